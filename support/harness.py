"""What every benchmark and experiment records beside its numbers, and how it writes them."""

import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


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


def save(folder: Path, name: str, results: dict, markdown: str) -> None:
    """Write FOLDER/NAME.json and FOLDER/NAME.md and print the Markdown."""
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (folder / f"{name}.md").write_text(markdown.rstrip() + "\n")
    print(markdown)


def table(header: list[str], rows: list[list]) -> list[str]:
    """A Markdown table's lines: the header, its rule (numbers right-aligned), a line per row."""
    rule = "|" + "".join("---:|" if i else "---|" for i in range(len(header)))
    return ["| " + " | ".join(header) + " |", rule, *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)]


def percentiles(milliseconds: list[float]) -> dict:
    return {"p50_ms": round(float(np.percentile(milliseconds, 50)), 3), "p99_ms": round(float(np.percentile(milliseconds, 99)), 3)}


def mpnet_model() -> Path:
    """all-mpnet-base-v2, the model a user would pick instead of an adapter (cachetune.packaged: `make extras`)."""
    from cachetune.packaged import mpnet

    return mpnet()
