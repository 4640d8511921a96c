"""What moves held-out quality: loss, data mix, LoRA against full fine-tuning, rank, learning rate, epochs.

Data comes from the domain's pipeline config (configs/DOMAIN.yaml: the same prepare, generate and mine
stages, in the same run folder); each experiment only changes the training step. Every experiment is
trained, then scored on the config's validation pairs (what we choose by) and on its held-out test files
(what we report), plus MRPC test pairs (what a domain adapter costs outside its domain).

    .venv/bin/python benchmarks/experiments.py --domain programming [--only NAME ...] [--force]

Results accumulate in results/experiments_DOMAIN.{json,md}; an experiment already there is not rerun
unless --force.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import RESULTS, machine, save

from cachetune.data.prepare import prepare
from cachetune.data.settings import PrepareSettings
from cachetune.evaluate.run import evaluate
from cachetune.evaluate.settings import EvaluateSettings
from cachetune.metrics import average_precision, pair_similarities
from cachetune.models import load_encoder
from cachetune.pipeline import Run, run_pipeline
from cachetune.records import Pair, read_records
from cachetune.train.settings import TrainSettings
from cachetune.train.trainer import train

REPO = Path(__file__).resolve().parents[1]
DATA_STAGES = ("prepare", "generate", "mine")

SEED = {
    "loss": ["mnr"],
    "lora_rank": 8,
    "lora_alpha": 16,
    "target_modules": ["query", "value"],
    "lr": 2e-5,
    "epochs": 1,
    "batch_size": 32,
}
WIDE = {"lora_rank": 16, "lora_alpha": 32, "target_modules": ["query", "key", "value", "dense"], "lr": 5e-4, "batch_size": 32}

EXPERIMENTS = {
    "programming": {
        "seed-recipe": (
            "the seed's settings: LoRA r8 q,v, MNR, 1 epoch, lr 2e-5, LLM triplets",
            {**SEED, "data": ["generate/triplets.jsonl"]},
        ),
        "seed-lr-2e-4": ("seed settings at lr 2e-4", {**SEED, "lr": 2e-4, "data": ["generate/triplets.jsonl"]}),
        "mnr-llm": (
            "MNR on LLM triplets, wide LoRA, 2 epochs",
            {**WIDE, "loss": ["mnr"], "epochs": 2, "data": ["generate/triplets.jsonl"]},
        ),
        "mnr-mined": (
            "MNR on rewrite pairs with mined hard negatives, wide LoRA, 2 epochs",
            {**WIDE, "loss": ["mnr"], "epochs": 2, "data": ["mine-conala/triplets.jsonl"]},
        ),
        "pairs-oc": (
            "OnlineContrastive on rewrite pairs (lexical negatives), wide LoRA, 2 epochs",
            {**WIDE, "loss": ["online-contrastive"], "epochs": 2, "data": ["prepare-conala/pairs.train.jsonl"]},
        ),
        "mix": (
            "MNR on mined + LLM triplets and OnlineContrastive on pairs, wide LoRA, 2 epochs",
            {
                **WIDE,
                "loss": ["mnr", "online-contrastive"],
                "epochs": 2,
                "data": ["mine-conala/triplets.jsonl", "generate/triplets.jsonl", "prepare-conala/pairs.train.jsonl"],
            },
        ),
        "pairs-oc-r8-qv": (
            "pairs-oc with LoRA r8 on query, value only (the seed's adapter shape)",
            {
                **WIDE,
                "lora_rank": 8,
                "lora_alpha": 16,
                "target_modules": ["query", "value"],
                "loss": ["online-contrastive"],
                "epochs": 2,
                "data": ["prepare-conala/pairs.train.jsonl"],
            },
        ),
        "pairs-oc-full": (
            "pairs-oc with full fine-tuning, lr 3e-5",
            {
                **WIDE,
                "lora": False,
                "lr": 3e-5,
                "loss": ["online-contrastive"],
                "epochs": 2,
                "data": ["prepare-conala/pairs.train.jsonl"],
            },
        ),
        "pairs-oc-4ep": (
            "pairs-oc, 4 epochs",
            {**WIDE, "loss": ["online-contrastive"], "epochs": 4, "data": ["prepare-conala/pairs.train.jsonl"]},
        ),
    },
    "medical": {
        "mqp-oc": (
            "OnlineContrastive on doctor-labelled mqp pairs, wide LoRA, 2 epochs",
            {**WIDE, "loss": ["online-contrastive"], "epochs": 2, "data": ["prepare-mqp/pairs.train.jsonl"]},
        ),
        "mqp-oc-full": (
            "OnlineContrastive on mqp pairs, full fine-tuning, lr 3e-5, 2 epochs",
            {**WIDE, "lora": False, "lr": 3e-5, "loss": ["online-contrastive"], "epochs": 2, "data": ["prepare-mqp/pairs.train.jsonl"]},
        ),
        "mqp-meqsum-oc": (
            "OnlineContrastive on mqp + MeQSum pairs, wide LoRA, 2 epochs",
            {
                **WIDE,
                "loss": ["online-contrastive"],
                "epochs": 2,
                "data": ["prepare-mqp/pairs.train.jsonl", "prepare-meqsum/pairs.train.jsonl"],
            },
        ),
        "mqp-oc-4ep": (
            "OnlineContrastive on mqp pairs, wide LoRA, 4 epochs",
            {**WIDE, "loss": ["online-contrastive"], "epochs": 4, "data": ["prepare-mqp/pairs.train.jsonl"]},
        ),
    },
}


# One adapter for both domains against one adapter per domain: the same data and recipe as the per-domain
# experiments pairs-oc (programming) and mqp-oc (medical), trained together.
MULTI_DOMAIN = (
    "one adapter for programming and medical: OnlineContrastive on CoNaLa rewrite pairs + mqp pairs, wide LoRA, 2 epochs (compare pairs-oc and mqp-oc)",
    {**WIDE, "loss": ["online-contrastive"], "epochs": 2, "max_seq_length": 128},
    {"programming": ["prepare-conala/pairs.train.jsonl"], "medical": ["prepare-mqp/pairs.train.jsonl"]},
)


def planned(run: Run, stage: str):
    """The settings the pipeline config gives `stage`."""
    return dict(run.stages)[stage]


def run_multi_domain(mrpc: Path) -> dict:
    """Train one adapter on both domains' training files; evaluate it on each domain's test files."""
    description, spec, data_by_domain = MULTI_DOMAIN
    runs = []
    for domain in data_by_domain:
        run, _ = run_pipeline(REPO / "configs" / f"{domain}.yaml", stages=DATA_STAGES)
        runs.append(run)
    folder = REPO / "runs" / "experiments" / "multi-domain"
    folder.mkdir(parents=True, exist_ok=True)
    val = folder / "pairs.val.jsonl"
    val.write_text("".join((run.folder / planned(run, "train").val_data).read_text() for run in runs))
    data = [run.folder / reference for run in runs for reference in data_by_domain[run.config.name]]
    settings = TrainSettings(train_data=tuple(data), output=folder / "model", val_data=val, **spec)
    info = (
        json.loads((folder / "model" / "training_info.json").read_text())
        if (folder / "model" / "training_info.json").exists()
        else train(settings)
    )
    tests = {}
    for run in runs:
        files = tuple(run.folder / reference for reference in planned(run, "evaluate").test_data)
        report = evaluate(
            EvaluateSettings(
                model=str(folder / "model"),
                test_data=files,
                output=folder / f"report-{run.config.name}",
                val_data=run.folder / planned(run, "evaluate").val_data,
                bootstrap=300,
                speed=False,
            )
        )
        tests.update(summarise(report, "tuned"))
    return {
        "description": description,
        "data": [f"{p.parent.parent.name}/{p.parent.name}/{p.name}" for p in data],
        "losses": list(settings.loss),
        "method": f"LoRA r{settings.lora_rank} on {','.join(settings.target_modules)}",
        "lr": settings.lr,
        "epochs": settings.epochs,
        "batch_size": settings.batch_size,
        "steps": info["steps"],
        "train_seconds": info.get("train_seconds"),
        "val": {k.removeprefix("val_"): round(v, 4) for k, v in info["validation"]["final"].items()},
        "test": tests,
        "mrpc_ap": round(pairs_ap(str(folder / "model"), mrpc), 4),
    }


def mrpc_pairs(data_root: Path, folder: Path) -> Path:
    path = folder / "pairs.test.jsonl"
    if not path.is_file():
        prepare(
            PrepareSettings(
                source="mrpc", input=str(data_root / "general" / "msr_paraphrase_test.txt"), output=folder, max_chars=400, val=0, test=1
            )
        )
    return path


def pairs_ap(model: str | None, pairs_file: Path) -> float:
    pairs = read_records(pairs_file, Pair)
    encoder = load_encoder(model)
    scores = pair_similarities(lambda texts: encoder.encode(texts, batch_size=64), [p.query1 for p in pairs], [p.query2 for p in pairs])
    return average_precision(np.array([p.label for p in pairs]), scores)


def summarise(report: dict, name: str) -> dict:
    """The numbers we compare by: per test file AP, recall@P0.95, and the operating point chosen on val."""
    tests = {}
    for section in report["pairs"]:
        result, boot = section[name], section.get("bootstrap", {}).get("intervals", {}).get(name, {})
        point = (result.get("at_operating_thresholds") or {}).get("target_precision") or {}
        tests[Path(section["file"]).parent.name] = {
            "ap": round(result["ap"], 4),
            "ap_interval": [round(v, 4) for v in boot.get("ap", [])],
            "recall_at_p95": round(result["recall_at_p95"], 4),
            "recall_at_p95_interval": [round(v, 4) for v in boot.get("recall_at_p95", [])],
            "precision_at_val_threshold": round(point.get("precision", float("nan")), 4),
            "recall_at_val_threshold": round(point.get("recall", float("nan")), 4),
            "false_hit_rate_at_val_threshold": round(point.get("false_hit_rate", float("nan")), 4),
        }
    return tests


def run_experiment(run: Run, folder: Path, description: str, spec: dict, mrpc: Path) -> dict:
    spec = dict(spec)
    data = [run.folder / reference for reference in spec.pop("data")]
    val = run.folder / planned(run, "train").val_data
    settings = TrainSettings(
        train_data=tuple(data), output=folder / "model", val_data=val, max_seq_length=planned(run, "train").max_seq_length, **spec
    )
    if (folder / "model" / "training_info.json").exists():
        info = json.loads((folder / "model" / "training_info.json").read_text())
    else:
        info = train(settings)
    tests = tuple(run.folder / reference for reference in planned(run, "evaluate").test_data)
    report = evaluate(
        EvaluateSettings(model=str(folder / "model"), test_data=tests, output=folder / "report", val_data=val, bootstrap=300, speed=False)
    )
    return {
        "description": description,
        "data": [p.name if p.parent == run.folder else f"{p.parent.name}/{p.name}" for p in data],
        "losses": list(settings.loss),
        "method": f"LoRA r{settings.lora_rank} on {','.join(settings.target_modules)}" if settings.lora else "full fine-tuning",
        "lr": settings.lr,
        "epochs": settings.epochs,
        "batch_size": settings.batch_size,
        "steps": info["steps"],
        "train_seconds": info.get("train_seconds"),
        "val": {k.removeprefix("val_"): round(v, 4) for k, v in info["validation"]["final"].items()},
        "test": summarise(report, "tuned"),
        "mrpc_ap": round(pairs_ap(str(folder / "model"), mrpc), 4),
        "_baseline": {"test": summarise(report, "baseline")},
    }


def markdown(domain: str, results: dict) -> str:
    base = results["baseline"]
    tests = list(base["test"])
    header = (
        "| experiment | method | losses | epochs | lr | val AP | "
        + " | ".join(f"{t} AP | {t} R@P.95" for t in tests)
        + " | MRPC AP | train s |"
    )
    rule = "|---" * (8 + 2 * len(tests)) + "|"
    lines = [
        f"# Experiments: {domain}",
        "",
        "Chosen by validation AP; test numbers are held-out groups (95% bootstrap intervals).",
        "",
        header,
        rule,
    ]

    def row(name: str, entry: dict) -> str:
        cells = [
            name,
            entry.get("method", "-"),
            ",".join(entry.get("losses", [])) or "-",
            str(entry.get("epochs", "-")),
            str(entry.get("lr", "-")),
            str(entry["val"].get("ap", "-")),
        ]
        for test in tests:
            t = entry["test"][test]
            ci = lambda key, t=t: f" [{t[key + '_interval'][0]:.3f}, {t[key + '_interval'][1]:.3f}]" if t.get(key + "_interval") else ""  # noqa: E731
            cells += [f"{t['ap']:.3f}{ci('ap')}", f"{t['recall_at_p95']:.3f}{ci('recall_at_p95')}"]
        cells += [f"{entry['mrpc_ap']:.3f}", str(entry.get("train_seconds", "-"))]
        return "| " + " | ".join(cells) + " |"

    lines.append(row("base model", base))
    for name, entry in results["experiments"].items():
        lines.append(row(name, entry))
    lines += [
        "",
        *(
            f"- **{name}**: {entry['description']}; data {', '.join(entry['data'])}; {entry['steps']} steps."
            for name, entry in results["experiments"].items()
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domain", choices=[*sorted(EXPERIMENTS), "multi-domain"], required=True)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    if args.domain == "multi-domain":
        mrpc = mrpc_pairs(REPO.parent / "shared" / "data", REPO / "runs" / "experiments" / "mrpc")
        entry = run_multi_domain(mrpc)
        lines = [
            "# Experiments: one multi-domain adapter",
            "",
            entry["description"] + f"; {entry['steps']} steps, {entry['train_seconds']} s.",
            "",
            "| test set | AP [95% CI] | recall@P0.95 [95% CI] | false-hit rate at the val threshold |",
            "|---|---:|---:|---:|",
        ]
        for test, t in entry["test"].items():
            lines.append(
                f"| {test} | {t['ap']:.3f} [{t['ap_interval'][0]:.3f}, {t['ap_interval'][1]:.3f}] | {t['recall_at_p95']:.3f} [{t['recall_at_p95_interval'][0]:.3f}, {t['recall_at_p95_interval'][1]:.3f}] | {t['false_hit_rate_at_val_threshold']:.3f} |"
            )
        lines += [
            "",
            f"MRPC AP {entry['mrpc_ap']:.3f}. Compare with the per-domain rows in experiments_programming.md and experiments_medical.md.",
        ]
        save("experiments_multi_domain", {**entry, "machine": machine()}, "\n".join(lines))
        return
    run, _ = run_pipeline(REPO / "configs" / f"{args.domain}.yaml", stages=DATA_STAGES)
    mrpc = mrpc_pairs(run.data_root, REPO / "runs" / "experiments" / "mrpc")
    path = RESULTS / f"experiments_{args.domain}.json"
    results = json.loads(path.read_text()) if path.exists() else {"experiments": {}}
    for name, (description, spec) in EXPERIMENTS[args.domain].items():
        if (args.only and name not in args.only) or (name in results["experiments"] and not args.force):
            continue
        started = time.time()
        entry = run_experiment(run, REPO / "runs" / "experiments" / args.domain / name, description, spec, mrpc)
        results["baseline"] = {"val": {}, **entry.pop("_baseline"), "mrpc_ap": round(pairs_ap(None, mrpc), 4)}
        results["experiments"][name] = entry
        results["machine"] = machine()
        save(f"experiments_{args.domain}", results, markdown(args.domain, results))
        print(f"{name}: {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
