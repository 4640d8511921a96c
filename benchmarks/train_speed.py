"""Training speed and peak memory: triplets/s at batch 32/64/128, LoRA (r8, query+value) vs full fine-tuning.

Each setting runs `cachetune.train` in a fresh process on real CoNaLa triplets (a rewrite as the positive,
a lexical negative from another question as the hard negative), MNR loss, max_seq_length 128.

    .venv/bin/python benchmarks/train_speed.py [--data ../shared/data] [--steps 6]
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from common import machine, save

BATCH_SIZES = (32, 64, 128)


def one_run(triplets: Path, batch_size: int, lora: bool, steps: int) -> dict:
    """Runs in its own process so that peak memory is this setting's alone."""
    from cachetune.train.settings import TrainSettings
    from cachetune.train.trainer import train

    with tempfile.TemporaryDirectory() as output:
        info = train(
            TrainSettings(
                train_data=(triplets,),
                output=Path(output) / "m",
                batch_size=batch_size,
                lora=lora,
                max_steps=steps,
                lr=2e-4,
                checkpoint_steps=steps,
            )
        )
    return {
        "batch_size": batch_size,
        "method": "lora" if lora else "full",
        "trainable_parameters": info.trainable_parameters,
        "steps": info.steps,
        "triplets_per_second": info.train_rows_per_second,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def make_triplets(data: Path, folder: Path) -> Path:
    from cachetune.data.prepare import prepare
    from cachetune.data.settings import PrepareSettings
    from cachetune.records import Pair, Triplet, read_records, write_jsonl

    prepare(PrepareSettings(source="conala", input=str(data / "programming" / "conala-train.json"), output=folder))
    pairs = read_records(folder / "pairs.train.jsonl", Pair)
    negative_of = {p.query1: p.query2 for p in pairs if p.label == 0}
    triplets = [
        Triplet(anchor=p.query1, positive=p.query2, hard_negative=negative_of[p.query1], domain="programming", source="conala")
        for p in pairs
        if p.label == 1 and p.query1 in negative_of
    ]
    write_jsonl(folder / "triplets.jsonl", triplets)
    return folder / "triplets.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--one", nargs=3, metavar=("TRIPLETS", "BATCH", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(Path(args.one[0]), int(args.one[1]), args.one[2] == "lora", args.steps)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        triplets = make_triplets(args.data, Path(folder))
        for method in ("lora", "full"):
            for batch_size in BATCH_SIZES:
                command = [sys.executable, __file__, "--steps", str(args.steps), "--one", str(triplets), str(batch_size), method]
                result = subprocess.run(command, capture_output=True, text=True, check=True)
                rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
                print(rows[-1], flush=True)
    table = "\n".join(
        f"| {r['method']} | {r['batch_size']} | {r['trainable_parameters']:,} | {r['triplets_per_second']:.1f} | {r['peak_rss_mib']:,} |"
        for r in rows
    )
    markdown = f"""# train speed: all-MiniLM-L6-v2, MNR on CoNaLa triplets, max_seq_length 128, {args.steps} steps each

| method | batch | trainable parameters | triplets/s | peak RSS (MiB) |
|---|---:|---:|---:|---:|
{table}

Machine: {machine()["cpus"]} CPUs, torch threads {machine()["torch_threads"]}, no GPU. Each row is a fresh process.
"""
    save("train_speed", {"benchmark": "train_speed", "steps": args.steps, "rows": rows, "machine": machine()}, markdown)


if __name__ == "__main__":
    main()
