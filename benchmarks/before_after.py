"""A check's cost on two trees, alternating: the HTTP benchmark's ONNX int8 case on the code before a change and after.

    git worktree add ../preui edc554e      # the operator's page: the commit before it, with the same BLAS threads
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/before_after.py --before-src ../preui/src --name ui_overhead
    git worktree add ../blas cdf0668       # one BLAS thread in `cachetune serve`: the commit before it
    .venv/bin/python benchmarks/before_after.py --before-src ../blas/src --name blas_threads
    git worktree add ../ui 6fdbcf0         # the operator's page alone, against the commit before it
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/before_after.py --before-src ../preui/src --after-src ../ui/src --name ui_alone

Each pair runs `cache_speed.py --section http --http-cases onnx-int8:memory` once on the code before
(`--before-src` first on PYTHONPATH, so both the service and the client import it) and once on this checkout, one after
the other on the same machine; the table gives each measure's median and range over the pairs, and what the
operator page's decision log costs a check in process. Writes results/NAME.{json,md}.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine, save, table

MEASURES = {  # (checks, clients, figure)
    "new wordings, 1 client p50 ms": ("new_wordings", "one_client", "p50_ms"),
    "new wordings, 16 clients checks/s": ("new_wordings", "sixteen_clients", "checks_per_second"),
    "new wordings, 16 clients p99 ms": ("new_wordings", "sixteen_clients", "p99_ms"),
    "exact repeats, 1 client p50 ms": ("exact_repeats", "one_client", "p50_ms"),
    "exact repeats, 16 clients checks/s": ("exact_repeats", "sixteen_clients", "checks_per_second"),
}


def http_row(src: Path | None) -> dict:
    """One run of cache_speed's HTTP case onnx-int8:memory, on `src` (None: this checkout)."""
    env = {**os.environ, **({"PYTHONPATH": str(src.resolve())} if src else {})}
    with tempfile.TemporaryDirectory() as folder:
        name = f"{folder}/run"  # cache_speed saves results/NAME: an absolute NAME keeps it out of results/
        command = [sys.executable, "cache_speed.py", "--section", "http", "--http-cases", "onnx-int8:memory", "--save-as", name]
        subprocess.run(command, cwd=Path(__file__).parent, env=env, check=True, capture_output=True)
        [row] = json.loads(Path(f"{name}.json").read_text())["http"]
    return row


def record_microseconds(records: int = 20_000) -> float:
    """What the decision log adds to a check in process: one `DecisionLog.record` of a refused lookup, microseconds."""
    from cachetune.cache.operator import DecisionLog
    from cachetune.cache.semantic_cache import Lookup
    from cachetune.cache.store import Partition
    from cachetune.cache_config import UiConfig

    log, found = DecisionLog(UiConfig()), Lookup(None, 0.7, 0.8, nearest="How do I sort a list in Python?", judged=0.7)
    began = time.perf_counter()
    for _ in range(records):
        log.record("check", "coding", Partition.of("tenant"), "How do I reverse a list in Python?", found, 1.0)
    return round((time.perf_counter() - began) / records * 1e6, 2)


def summary(runs: dict[str, list[dict]]) -> list[list]:
    rows = []
    for label, (checks, clients, figure) in MEASURES.items():
        cells = [label]
        for side in ("before", "after"):
            values = [run[checks][clients][figure] for run in runs[side]]
            cells.append(f"{np.median(values):.1f} ({min(values):.1f}-{max(values):.1f})")
        rows.append(cells)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before-src", type=Path, required=True, help="the src folder of the code before the change")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--after-src", type=Path, help="the src folder of the code after it (default: this checkout)")
    parser.add_argument("--name", required=True, help="results/NAME.{json,md}")
    args = parser.parse_args()
    record_us = record_microseconds()
    runs = {"before": [], "after": []}
    for pair in range(args.pairs):
        runs["before"].append(http_row(args.before_src))
        runs["after"].append(http_row(args.after_src))
        print(f"pair {pair + 1} of {args.pairs} measured", flush=True)
    results = {"machine": machine(), "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "record_us": record_us, "runs": runs}
    lines = [
        f"# {args.name}: a check's cost before and after (HTTP, ONNX int8, embedded store) on {results['machine']['cpu_model']}",
        "",
        f"{args.pairs} pairs, before ({args.before_src}) and after ({args.after_src or 'this checkout'}) alternating; median (range). "
        f"OPENBLAS_NUM_THREADS={results['openblas_threads']}. Re-run: see the docstring of benchmarks/before_after.py.",
        "",
        *table(["measure", "before", "after"], summary(runs)),
        "",
        f"The decision log itself, in process: {record_us} µs per check (`DecisionLog.record`, 20,000 records).",
    ]
    save(args.name, results, "\n".join(lines))


if __name__ == "__main__":
    main()
