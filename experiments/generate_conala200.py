"""200 CoNaLa training queries turned into triplets by the 0.5B model: the report and 20 random rows.

    .venv/bin/python experiments/generate_conala200.py [--data ../shared/data] [--run runs/conala200]

Resumes an earlier run in --run (so re-running only samples again), then saves
results/generate_conala200.{json,md}.
"""

import argparse
import json
import random
from pathlib import Path

from common import REPO, save

from cachetune.data.prepare import prepare
from cachetune.data.settings import PrepareSettings
from cachetune.records import Triplet, read_records
from cachetune.synth.generate import generate
from cachetune.synth.settings import GenerateSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--run", type=Path, default=REPO / "runs" / "conala200")
    args = parser.parse_args()
    prepare(PrepareSettings(source="conala", input=str(args.data / "programming" / "conala-train.json"), output=args.run / "prepare"))
    output = args.run / "triplets.jsonl"
    report = generate(
        GenerateSettings(
            input=args.run / "prepare" / "queries.train.jsonl", output=output, max_queries=200, batch_size=16, resume=output.exists()
        )
    )
    rows = read_records(output, Triplet)
    sample = random.Random(0).sample(rows, 20)
    table = "\n".join(f"| {t.anchor} | {t.positive} | {t.hard_negative} |".replace("`", "'") for t in sample)
    rejects = ", ".join(f"{reason} {count}" for reason, count in report["rejects"].items())
    markdown = f"""# 200 CoNaLa training queries -> triplets, Qwen2.5-Coder-0.5B-Instruct Q4_K_M (llama-cpp, batch 16)

{report["queries_done"]} queries, {report["rows"]} triplets ({report["queries_without_rows"]} queries kept no row),
{report["completion_tokens_per_second"]} completion tokens/s, {report["queries_per_minute"]} queries/min.
Rejected texts: {rejects}.

20 random rows (seed 0):

| anchor | positive | hard negative |
|---|---|---|
{table}
"""
    save("generate_conala200", {"report": report, "sample": [json.loads(t.model_dump_json()) for t in sample]}, markdown)


if __name__ == "__main__":
    main()
