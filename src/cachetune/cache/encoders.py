"""One base model for every domain, each domain's adapter applied on it.

`merged` (default): each domain with an adapter gets its own copy of the base with the adapter merged in
(PEFT merge_and_unload): encoding costs what the base costs and domains never wait on each other, for
~50 MB per domain. `switched`: the base is loaded once and every domain's LoRA adapter is loaded into it
by name; a request activates its domain's adapter (or none) under a lock: a few MB per domain, but an
unmerged rank-16 adapter on every layer more than doubles encode time on CPU (11 -> 28 ms measured).
Use it for many domains on little memory. benchmarks/results/cache_speed.md measures both.
"""

import threading

import numpy as np

from cachetune.errors import ModelError
from cachetune.models import load_encoder, resolve_base_model, resolve_model


class DomainEncoders:
    def __init__(self, base_model: str | None, models: dict[str, str | None], mode: str = "merged") -> None:
        from sentence_transformers import SentenceTransformer

        base = resolve_base_model(base_model)
        self._base = SentenceTransformer(base.location)
        self._base_length = self._base.max_seq_length
        self._lock = threading.Lock()
        self._separate: dict[str, object] = {}  # domain -> its own encoder (merged copies, full models)
        self._adapters: dict[str, int] = {}  # domain -> max_seq_length, for adapters switched on the base
        for domain, spec in models.items():
            if spec is None:
                continue
            resolved = resolve_model(spec)
            if resolved.kind != "adapter":
                self._separate[domain] = load_encoder(resolved)
                continue
            if resolved.base.location != base.location:
                raise ModelError(
                    f"domain {domain}: adapter {spec} was trained on {resolved.base.name}, not on the cache's base model {base.name}"
                )
            if mode == "merged":
                self._separate[domain] = load_encoder(resolved, merge=True)
            else:
                self._base.load_adapter(resolved.location, adapter_name=domain)
                self._adapters[domain] = resolved.max_seq_length or self._base_length
        self.dim = self._base.get_embedding_dimension()

    def encode(self, domain: str, text: str) -> np.ndarray:
        """The L2-normalised embedding of `text` as `domain` sees it."""
        model = self._separate.get(domain)
        if model is not None:
            return np.asarray(model.encode([text], normalize_embeddings=True, convert_to_numpy=True)[0], dtype=np.float32)
        with self._lock:  # the active adapter is state shared by every request
            if self._adapters:
                if domain in self._adapters:
                    self._base.enable_adapters()
                    self._base.set_adapter(domain)
                    self._base.max_seq_length = self._adapters[domain]
                else:
                    self._base.disable_adapters()
                    self._base.max_seq_length = self._base_length
            vector = self._base.encode([text], normalize_embeddings=True, convert_to_numpy=True)[0]
        return np.asarray(vector, dtype=np.float32)
