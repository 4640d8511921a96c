"""Which recipe makes a populated cache right more often, chosen on validation alone, with three seeds.

    .venv/bin/python experiments/experiments.py --domain programming|medical [--only RECIPE ...] [--seeds 1 2 3]

Data (support/measure.py, from the prepare steps of configs/DOMAIN.yaml; the groups of each split never meet):
- train: the train split's labelled pairs, and triplets whose negatives the base model mined from other groups;
- validation, built unlike the training negatives: the val split's same-intent pairs with lexical negatives
  (prepare's), negatives mined by the base model from the val and train queries, and negatives from another
  dataset (CoSQA for programming, MedQuAD for medical); medical adds RQE-valid's validation half;
- general: STS-B dev and MRPC train (the config's general_data) guard every recipe (the update is scaled back
  until each is within 0.01 of the base model); STS-B test and MRPC test are reported;
- test: the test split, never used to choose; the base model and all-mpnet-base-v2 are measured beside.

A recipe replaces the best so far only when its mean validation replay AUC is higher and it wins on every seed.
Results accumulate in results/experiments_DOMAIN.{json,md}; a (recipe, seed) already there is not run again.
"""

import argparse
import json
import time

from common import RESULTS, machine, mpnet_model, save
from measure import (
    EXPERIMENTS,
    SECOND_PAIRS,
    DomainData,
    cell,
    domain_data,
    labelled_triplets,
    llm_paraphrase_triplets,
    score_model,
    trap_triplets,
)
from recipes import MAX_SEQ_LENGTH, RECIPES, UNGUARDED

from cachetune.models import load_encoder
from cachetune.records import Pair, read_records
from cachetune.train.record import TrainingRecord
from cachetune.train.settings import TrainSettings
from cachetune.train.trainer import train
from cachetune.train.validation import PairValidation


def recipes_of(domain: str) -> list[str]:
    usable = [
        name
        for name, (_, inputs, _) in RECIPES.items()
        if {"second-pairs", "more-second-pairs"}.isdisjoint(inputs) or domain in SECOND_PAIRS
    ]
    return [*usable, UNGUARDED]


def run_recipe(domain: str, data: DomainData, name: str, seed: int) -> dict:
    description, inputs, spec = RECIPES[name.removesuffix("-no-guard")]
    folder = EXPERIMENTS / domain / name / f"seed{seed}"
    files = {
        "pairs": lambda: data.train_pairs,
        "mined": lambda: data.mined,
        "llm": lambda: llm_paraphrase_triplets(domain, data),
        "labelled": lambda: labelled_triplets(
            tuple(path for path in (data.train_pairs, data.second_pairs) if path), data.mined.with_name("labelled-triplets.jsonl")
        ),
        "traps": lambda: trap_triplets(data.train_pairs, data.mined.with_name("trap-triplets.jsonl")),
        "second-pairs": lambda: data.second_pairs,
        "more-second-pairs": lambda: data.more_second_pairs,
    }
    settings = TrainSettings(
        train_data=tuple(files[kind]() for kind in inputs if kind != "preserve"),
        output=folder / "model",
        val_data=data.val,
        general_data=() if name == UNGUARDED else data.general_val,
        preserve_data=(data.general_preserve,) if "preserve" in inputs else (),
        max_seq_length=MAX_SEQ_LENGTH[domain],
        seed=seed,
        resume=True,  # an interrupted experiment continues from its last checkpoint
        **spec,
    )
    info = TrainingRecord.read(folder / "model") if (folder / "model" / "training_info.json").is_file() else train(settings)
    return {
        "val": info.validation.final,
        "guard_scale": info.general_guard.chosen_scale if info.general_guard else None,
        "train_seconds": info.train_seconds,
        "steps": info.steps,
        "test": score_model(str(folder / "model"), data.tests, data.general_test),
    }


def wins(candidate: dict, best: dict) -> bool:
    """Better on mean validation replay AUC and on every seed, with at least the seeds of the best so far."""
    seeds = sorted(set(candidate) & set(best))
    if not seeds or len(candidate) < len(best):
        return False
    ours, theirs = [candidate[s]["val"]["val_replay_auc"] for s in seeds], [best[s]["val"]["val_replay_auc"] for s in seeds]
    return sum(ours) > sum(theirs) and all(a > b for a, b in zip(ours, theirs))


def select(results: dict) -> tuple[str, list[str]]:
    """The recipe to ship: only adapters with three seeds compete (a full fine-tune is ~90 MB per domain, and a
    recipe screened on one seed is shown for what it buys)."""
    best, log = None, []
    for name in RECIPES:
        runs = results["recipes"].get(name)
        if not runs or len(runs) < 3 or RECIPES[name][2].get("lora") is False:
            continue
        if best is None or wins(runs, results["recipes"][best]):
            log.append(f"{name} {'replaces ' + best if best else 'is the first'}")
            best = name
        else:
            log.append(f"{name} does not win on every seed against {best}")
    return best, log


def markdown(domain: str, results: dict) -> str:
    tests = list(results["reference"]["base"]["test"])
    general = [name for name in tests if name.startswith(("STS-B", "MRPC"))]
    domain_tests = [name for name in tests if name not in general]
    header = ["recipe", "seeds", "val replay AUC", "val AP", "guard scale"]
    for name in domain_tests:
        header += [f"{name} replay AUC", f"{name} AP", f"{name} R@P0.95"] + ([f"{name} R@1"] if domain == "programming" else [])
    header += [*general, "train s"]
    lines = [
        f"# Experiments: {domain}",
        "",
        "Chosen on validation alone (mixed negatives, replay AUC, three seeds; a recipe wins only when it wins on every seed).",
        "Only adapter recipes with three seeds compete to ship; full fine-tuning (~90 MB) and one-seed screens are shown beside.",
        "Test columns are held-out groups, shown for every recipe but never used to choose. Values: mean ± half-width of",
        "the 95% t interval over seeds. Guard scale: the share of the trained update kept so that STS-B dev and MRPC",
        "train stay within 0.01 of the base model (1.0: all of it).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]

    def row(label: str, runs: list[dict], seeds: str) -> str:
        cells = [label, seeds]
        vals = [r["val"] for r in runs if r.get("val")]
        cells += [cell([v["val_replay_auc"] for v in vals]) if vals else "-", cell([v["val_ap"] for v in vals]) if vals else "-"]
        scales = [r["guard_scale"] for r in runs if r.get("guard_scale") is not None]
        cells.append(", ".join(f"{s:g}" for s in scales) if scales else "-")
        for name in domain_tests:
            keys = ["replay_auc", "ap", "recall_at_p95"] + (["recall_at_1"] if domain == "programming" else [])
            cells += [cell([r["test"][name][key] for r in runs]) for key in keys]
        cells += [cell([r["test"][name] for r in runs]) for name in general]
        cells.append(str(round(sum(r.get("train_seconds") or 0 for r in runs) / len(runs))) if runs[0].get("train_seconds") else "-")
        return "| " + " | ".join(cells) + " |"

    for name, entry in results["reference"].items():
        lines.append(row(f"**{name}** (reference)", [entry], "-"))
    for name, runs in results["recipes"].items():
        ordered = [runs[s] for s in sorted(runs)]
        lines.append(row(name, ordered, ",".join(sorted(runs))))
    best, log = select(results)
    lines += [
        "",
        f"**Chosen: {best}.** Selection: " + "; ".join(log) + "." if best else "**Chosen: none** (no adapter recipe has three seeds).",
        "",
    ]
    lines += [f"- **{name}**: {RECIPES[name.removesuffix('-no-guard')][0]}" for name in results["recipes"]]
    missing = [name for name in recipes_of(domain) if name not in results["recipes"]]
    lines += ["", f"Not run (yet): {', '.join(missing)}."] if missing else []
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domain", choices=["programming", "medical"], required=True)
    parser.add_argument("--only", nargs="+", help="recipes to run (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    args = parser.parse_args()
    data = domain_data(args.domain)
    path = RESULTS / f"experiments_{args.domain}.json"
    results = json.loads(path.read_text()) if path.exists() else {"recipes": {}, "reference": {}}
    # model specs made on demand: mpnet's unpacking needs `make extras`, and only when its figures are not saved yet
    references = {"base": lambda: None, "all-mpnet-base-v2": lambda: str(mpnet_model()), "v1 shipped adapter": lambda: args.domain}
    validation = PairValidation(read_records(data.val, Pair))
    for name, spec in references.items():
        if name not in results["reference"]:
            model = load_encoder(spec())
            val = {f"val_{key}": value for key, value in validation.scores(model).items()}
            results["reference"][name] = {"val": val, "test": score_model(model, data.tests, data.general_test)}
    for name in args.only or recipes_of(args.domain):
        for seed in args.seeds:
            runs = results["recipes"].setdefault(name, {})
            if str(seed) in runs:
                continue
            started = time.time()
            runs[str(seed)] = run_recipe(args.domain, data, name, seed)
            print(f"{name} seed {seed}: {time.time() - started:.0f} s, val {runs[str(seed)]['val']}", flush=True)
            save(f"experiments_{args.domain}", {**results, "machine": machine()}, markdown(args.domain, results))
    results["chosen"] = select(results)[0]
    save(f"experiments_{args.domain}", {**results, "machine": machine()}, markdown(args.domain, results))


if __name__ == "__main__":
    main()
