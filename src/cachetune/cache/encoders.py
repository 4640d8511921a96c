"""Each domain's encoder: one base model, the domain's adapter on it, run by torch or ONNX Runtime, behind a
micro-batcher.

- `encoder: onnx` (fp32) or `onnx-int8`: the domain's model with its adapter merged is exported once by
  `cachetune export` into `onnx_cache/<sha256 of its weight files>/` and reused while those files are unchanged;
  each time it is loaded its vectors of fixed texts are compared with the torch vectors the export recorded, and a
  graph that disagrees is refused (ModelError), never served.
- `encoder: torch`, `adapter_mode: merged` (default): each domain with an adapter gets its own copy of the base with
  the adapter merged in (PEFT merge_and_unload). `switched`: the base is loaded once, every domain's LoRA adapter is
  loaded into it by name and activated per batch under a lock: a few MB per domain, but an unmerged rank-16 adapter
  on every layer more than doubles encode time on CPU. benchmarks/results/cache_speed.md measures all of them.
- Micro-batching: each encoder has one worker thread. A request that finds it idle is encoded at once, alone (a
  single client pays nothing for batching); requests that arrive while it is busy wait for the current forward
  pass and are then encoded together, up to `max_batch` at a time, so throughput grows with concurrent clients.
  `max_wait_ms` > 0 also holds a batch open that long for more requests.
- Window: each encoder reads at most `max_seq_length` tokens of a text (the shipped programming adapter 64, medical
  128, the base 256) and drops the rest; `reads_whole(domain, text)` says whether a text fits, so that the cache
  never decides on part of a prompt (a domain's `long_prompts`, `cachetune.cache.semantic_cache`).
- Exact tier: the vectors of the last `exact_tier_entries` texts (`cachetune.text.clean_text`: NFC, spacing
  collapsed, case kept, so the vector is the one the model gives) are kept per domain, least recently used out:
  a repeated prompt is answered from the store without a forward pass. It only skips the encoder; the store still
  decides, so a TTL, an invalidation or a feedback deletion holds for it as for any lookup.
"""

import hashlib
import queue
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cachetune.cache_config import BatchingConfig, CacheConfig
from cachetune.errors import ModelError
from cachetune.models import ModelSpec, ResolvedModel, files_sha256, load_encoder, resolve_base_model, resolve_model
from cachetune.onnx_encoder import ONNX_DIR, OnnxEncoder
from cachetune.text import clean_text


class MicroBatcher:
    """Encodes texts submitted from many threads in shared forward passes (see the module's docstring)."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], settings: BatchingConfig) -> None:
        self._encode = encode
        self._max_batch = settings.max_batch
        self._max_wait = settings.max_wait_ms / 1000
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._run, daemon=True, name="cachetune-encoder")
        self._worker.start()

    def __call__(self, text: str) -> np.ndarray:
        return self.many([text])[0]

    def many(self, texts: list[str]) -> list[np.ndarray]:
        """Every text queued at once, so they share forward passes (up to `max_batch` each)."""
        futures = [Future() for _ in texts]
        for text, future in zip(texts, futures):
            self._queue.put((text, future))
        return [future.result() for future in futures]

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=5)

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get(timeout=self._max_wait) if self._max_wait else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            try:
                vectors = self._encode([text for text, _ in batch])
            except Exception as error:  # every waiting request gets the error, not a hang
                for _, future in batch:
                    future.set_exception(error)
                continue
            for (_, future), vector in zip(batch, vectors):
                future.set_result(vector)


class VectorMemo:
    """The vectors of the most recently encoded texts, keyed by (domain, clean text), least recently used out."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> np.ndarray | None:
        with self._lock:
            vector = self._vectors.get(key)
            if vector is not None:
                self._vectors.move_to_end(key)
            return vector

    def put(self, key: tuple[str, str], vector: np.ndarray) -> None:
        if self._capacity == 0:
            return
        with self._lock:
            self._vectors[key] = vector
            self._vectors.move_to_end(key)
            while len(self._vectors) > self._capacity:
                self._vectors.popitem(last=False)


Encode = Callable[[list[str]], np.ndarray]  # texts -> their L2-normalised vectors, one row each


def _normalised(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class Window:
    """How much of a text an encoder reads: `tokens` tokens of its tokenizer, the special ones included."""

    tokenizer: object
    tokens: int

    def fits(self, text: str) -> bool:
        if len(text) <= self.tokens - 2:  # a token is at least one character: no need to count
            return True
        return len(self.tokenizer(text, truncation=False, verbose=False)["input_ids"]) <= self.tokens


class EncoderPool:
    """Loaded models, each loaded once and shared by every `DomainEncoders` given this pool (the domains of one cache,
    or every cache of a test session): keyed by what runs them (torch, onnx, onnx-int8) and where the model and its
    base lie."""

    def __init__(self) -> None:
        self._loaded: dict[tuple, Encode] = {}
        self._windows: dict[tuple, Window] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(spec: ModelSpec, encoder: str) -> tuple:
        return (encoder if spec.kind != "onnx" else "onnx-file", spec.kind, spec.location, spec.base.location if spec.base else None)

    def encode_function(self, spec: ModelSpec, encoder: str, onnx_cache: str) -> Encode:
        """The model's encode function, loaded (or exported to ONNX into `onnx_cache`) on first use."""
        key = self.key(spec, encoder)
        with self._lock:
            if key not in self._loaded:
                if encoder == "torch" or spec.kind == "onnx":
                    model = (
                        load_encoder(spec, merge=True) if spec.kind != "onnx" else OnnxEncoder.from_file(Path(spec.location), check=True)
                    )
                else:
                    model = _onnx_export(spec, Path(onnx_cache).expanduser(), int8=encoder == "onnx-int8")
                self._loaded[key] = lambda texts: _normalised(model.encode(texts, batch_size=len(texts), normalize_embeddings=True))
                self._windows[key] = Window(model.tokenizer, model.max_seq_length)
            return self._loaded[key]

    def window(self, spec: ModelSpec, encoder: str) -> Window:
        """What the model `encode_function` loaded reads of a text."""
        return self._windows[self.key(spec, encoder)]


def _onnx_export(spec: ModelSpec, onnx_cache: Path, int8: bool) -> OnnxEncoder:
    """The model's ONNX export from the cache folder, exported there first when its weights are new."""
    from cachetune.export.run import export_model
    from cachetune.export.settings import ExportSettings

    identity = hashlib.sha256(f"{files_sha256(spec.weight_files())}:{spec.max_seq_length}:{int8}".encode()).hexdigest()[:32]
    folder = onnx_cache / identity
    graph = folder / ONNX_DIR / ("model_int8.onnx" if int8 else "model.onnx")
    if not graph.is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
            export_model(ExportSettings(model=spec.name, output=Path(scratch) / "export", onnx=True, int8=int8), spec)
            shutil.rmtree(folder, ignore_errors=True)
            (Path(scratch) / "export").rename(folder)
    return OnnxEncoder.from_file(graph, check=True)


class DomainEncoders:
    """The encoder of every configured domain.

    Args:
        config: the cache's config: its domains' models, `base_model`, `adapter_mode`, batching and exact tier.
        pool: loaded models to share (default: a pool of this instance's own).
        base: the cache's base model, resolved already (default: `config.base_model` resolved).

    Raises:
        ModelError: a domain's model cannot be loaded, an adapter was trained on another base than the cache's, or
            an ONNX graph fails its parity check.
    """

    def __init__(self, config: CacheConfig, *, pool: EncoderPool | None = None, base: ResolvedModel | None = None) -> None:
        self._config = config
        self._base = base or resolve_base_model(config.base_model)
        self._pool = pool or EncoderPool()
        self._switched = None  # the shared torch base of adapter_mode switched, loaded only when a domain needs it
        self._switched_length: int | None = None
        self._lock = threading.Lock()
        self._batchers: dict[str, MicroBatcher] = {}
        self._windows: dict[str, Window] = {}
        self._shared: dict[tuple, MicroBatcher] = {}  # one batcher per distinct model, shared by the domains that use it
        self.memo = VectorMemo(config.exact_tier_entries)
        specs = {domain: self._spec_of(domain, settings.embedding_model_path) for domain, settings in config.domains.items()}
        torch_adapters = [d for d, spec in specs.items() if spec.kind == "adapter" and config.domains[d].encoder == "torch"]
        switched = config.adapter_mode == "switched" and bool(torch_adapters)
        for domain, settings in config.domains.items():
            spec = specs[domain]
            if switched and settings.encoder == "torch" and spec.kind != "onnx":
                adapter = spec if spec.kind == "adapter" else None
                self._batchers[domain] = MicroBatcher(self._switched_encode(domain, adapter), config.batching)
                self._windows[domain] = Window(
                    self._switched.tokenizer, (adapter.max_seq_length if adapter else None) or self._switched_length
                )
            else:
                self._batchers[domain] = self._batcher(spec, settings.encoder)
                self._windows[domain] = self._pool.window(spec, settings.encoder)
        self._second = {
            domain: self._batcher(self._spec_of(domain, settings.second_model, on_base=False), settings.encoder)
            for domain, settings in config.domains.items()
            if settings.second_model
        }
        self.dim = int(self.encode(next(iter(config.domains)), "dimension").shape[0])

    @property
    def domains(self) -> list[str]:
        return list(self._batchers)

    def _spec_of(self, domain: str, model: str | None, on_base: bool = True) -> ModelSpec:
        """A domain's model, an adapter on the cache's own base (the same weights wherever its name found them); a
        second opinion's model (`on_base` False) on whatever base it names."""
        if model is None:
            return ModelSpec.of_base(self._base)
        try:
            spec = resolve_model(model)
            return spec.on_base(self._base) if on_base else spec
        except ModelError as error:
            raise ModelError(f"domain {domain}: {error}") from None

    def _batcher(self, spec: ModelSpec, encoder: str) -> MicroBatcher:
        key = EncoderPool.key(spec, encoder)
        if key not in self._shared:
            encode = self._pool.encode_function(spec, encoder, self._config.onnx_cache)
            self._shared[key] = MicroBatcher(encode, self._config.batching)
        return self._shared[key]

    def _switched_encode(self, domain: str, adapter: ModelSpec | None) -> Encode:
        """Encoding on the one shared base: the domain's adapter switched on, or every adapter off."""
        with self._lock:
            if self._switched is None:
                self._switched = load_encoder(ModelSpec.of_base(self._base))
                self._switched_length = self._switched.max_seq_length
            if adapter is not None:
                self._switched.load_adapter(adapter.location, adapter_name=domain)
        length = (adapter.max_seq_length if adapter else None) or self._switched_length

        def encode(texts: list[str]) -> np.ndarray:
            with self._lock:  # the active adapter is state shared by every domain
                if adapter is None:
                    self._switched.disable_adapters()
                else:
                    self._switched.enable_adapters()
                    self._switched.set_adapter(domain)
                self._switched.max_seq_length = length
                return _normalised(self._switched.encode(texts, batch_size=len(texts), normalize_embeddings=True))

        return encode

    def reads_whole(self, domain: str, text: str) -> bool:
        """Whether `domain`'s encoder reads all of `text` (its tokens fit the window; see the module's docstring)."""
        return self._windows[domain].fits(text)

    def window(self, domain: str) -> int:
        """The tokens `domain`'s encoder reads of a text."""
        return self._windows[domain].tokens

    def encode(self, domain: str, text: str) -> np.ndarray:
        """The L2-normalised embedding of `text` as `domain` sees it: from the exact tier when it was encoded lately."""
        return self.encode_many(domain, [text])[0]

    def encode_many(self, domain: str, texts: list[str]) -> list[np.ndarray]:
        """`encode` of each text; those not in the exact tier are encoded together."""
        return self._memoised(domain, self._batchers[domain], texts)

    def _memoised(self, name: str, batcher: MicroBatcher, texts: list[str]) -> list[np.ndarray]:
        keys = [(name, clean_text(text)) for text in texts]
        vectors = [self.memo.get(key) for key in keys]
        missing = [i for i, vector in enumerate(vectors) if vector is None]
        for i, vector in zip(missing, batcher.many([texts[i] for i in missing])):
            vectors[i] = vector
            self.memo.put(keys[i], np.array(vector))  # a copy: a row view would keep its whole batch alive
        return vectors

    def encode_second(self, domain: str, texts: list[str]) -> list[np.ndarray]:
        """The domain's second model's vectors of `texts` (its `second_model`), from the exact tier when encoded lately.

        Raises:
            KeyError: the domain has no second model.
        """
        return self._memoised(f"{domain}\x1fsecond", self._second[domain], texts)

    def encode_base(self, text: str) -> np.ndarray:
        """The base model's embedding (no adapter): loaded on first use unless a domain already uses it."""
        encoder = self._config.domains[next(iter(self._config.domains))].encoder
        with self._lock:
            batcher = self._batcher(ModelSpec.of_base(self._base), encoder)
        return batcher(text)

    def close(self) -> None:
        for batcher in {*self._batchers.values(), *self._shared.values(), *self._second.values()}:
            batcher.close()

    def __enter__(self) -> "DomainEncoders":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
