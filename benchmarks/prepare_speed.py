"""`cachetune prepare` with near-duplicate removal on all 47,441 MedQuAD questions (target: < 2 minutes).

.venv/bin/python benchmarks/prepare_speed.py [--data ../shared/data] [--repeats 3]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import machine, save

from cachetune.data.prepare import prepare
from cachetune.data.settings import PrepareSettings

TARGET_SECONDS = 120


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    source = args.data / "medical" / "medquad-questions.jsonl"
    seconds = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as output:
            start = time.perf_counter()
            report = prepare(PrepareSettings(source="medquad", input=str(source), output=Path(output), dedupe="near"))
            seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    results = {
        "benchmark": "prepare_speed",
        "command": "cachetune prepare --source medquad --input medquad-questions.jsonl --dedupe near",
        "rows_read": report["rows_read"],
        "queries_kept": report["queries"]["kept"],
        "dropped": report["queries"]["dropped"],
        "near_duplicate_clusters": report["near_duplicate_clusters"],
        "seconds": [round(value, 2) for value in seconds],
        "median_seconds": round(median, 2),
        "rows_per_second": round(report["rows_read"] / median),
        "target_seconds": TARGET_SECONDS,
        "meets_target": median < TARGET_SECONDS,
        "machine": machine(),
    }
    markdown = f"""# prepare speed: MedQuAD, near-dedupe

| rows read | queries kept | near-duplicate clusters | median seconds ({args.repeats} runs) | rows/s | target |
|---:|---:|---:|---:|---:|---|
| {report["rows_read"]:,} | {report["queries"]["kept"]:,} | {report["near_duplicate_clusters"]} | {median:.1f} | {results["rows_per_second"]:,} | < {TARGET_SECONDS} s: {"met" if results["meets_target"] else "missed"} |

Dropped: {", ".join(f"{reason} {count:,}" for reason, count in report["queries"]["dropped"].items())}.
Machine: {results["machine"]["cpus"]} CPUs, {results["machine"]["processor"]}, Python {results["machine"]["python"]}.
"""
    save("prepare_speed", results, markdown)


if __name__ == "__main__":
    main()
