"""The shipped adapters against the base model and all-MiniLM-L6-v2's bigger sibling, on held-out test data.

    .venv/bin/python benchmarks/quality.py [--adapters NAME ...]

For each shipped adapter (src/cachetune/adapters/NAME, trained by configs/NAME.yaml): the populated-cache replay
P-CHR AUC, pair AP, recall at precision 0.95 and retrieval recall@1 on its domain's test files, STS-B and MRPC test
outside its domain, and encode latency, beside the base model and all-mpnet-base-v2 (support/measure.py). The
spread over seeds of the recipe that trained it comes from experiments/results/experiments_NAME.json (three seeds,
95% t intervals); the issue's targets are checked per test file. Results: results/quality.{json,md}.
"""

import argparse
import json
from pathlib import Path

from common import REPO, RESULTS, machine, mpnet_model, save
from measure import EXPERIMENTS, domain_data, mean_interval, score_model

from cachetune.evaluate.speed import encode_speed
from cachetune.models import SHIPPED_ADAPTERS, load_encoder, shipped_adapters
from cachetune.records import Pair, read_records

TARGETS = {
    "programming": {"CoNaLa test": {"recall_at_1_gain": 0.03}},
    "medical": {"mqp test": {"ap": 0.95, "recall_at_p95": 0.70}},
}


RECIPE_KEYS = ("loss", "lora", "lora_rank", "lora_alpha", "target_modules", "lr", "epochs", "batch_size", "max_seq_length")


def recipe_of(training_info: Path) -> dict:
    hyperparameters = json.loads(training_info.read_text())["hyperparameters"]
    hyperparameters.setdefault("loss", hyperparameters.get("losses"))  # v1 adapters recorded it as `losses`
    return {key: hyperparameters[key] for key in RECIPE_KEYS}


def seed_spread(name: str) -> dict:
    """Per test metric: the 95% interval over seeds of the recipe the shipped adapter was trained with, when the
    experiments' chosen recipe is the one it was trained with (empty otherwise)."""
    path = REPO / "experiments" / "results" / f"experiments_{name}.json"
    if not path.is_file():
        return {}
    results = json.loads(path.read_text())
    chosen = results.get("chosen")
    trained = EXPERIMENTS / name / str(chosen) / "seed1" / "model" / "training_info.json"
    if not trained.is_file() or recipe_of(trained) != recipe_of(SHIPPED_ADAPTERS / name / "training_info.json"):
        return {}
    runs = list(results["recipes"][chosen].values())
    spread = {}
    for test in runs[0]["test"] if runs else []:
        values = [run["test"][test] for run in runs]
        if isinstance(values[0], dict):
            spread[test] = {key: mean_interval([v[key] for v in values]) for key in values[0] if values[0][key] is not None}
        else:
            spread[test] = mean_interval(values)
    return {"recipe": results.get("chosen"), "seeds": len(runs), "spread": spread}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--adapters", nargs="+", choices=shipped_adapters(), help="re-score only these (the others' rows are kept)")
    args = parser.parse_args()
    path = RESULTS / "quality.json"
    kept = json.loads(path.read_text())["adapters"] if args.adapters and path.is_file() else {}
    results = {"benchmark": "quality", "machine": machine(), "adapters": kept}
    mpnet = str(mpnet_model())
    for name in args.adapters or shipped_adapters():
        data = domain_data(name)
        queries = [p.query1 for p in read_records(next(iter(data.tests.values())), Pair)][:200]
        models = {"base": None, "all-mpnet-base-v2": mpnet, name: name}
        entry = {"models": {}, "seeds": seed_spread(name)}
        for label, spec in models.items():
            encoder = load_encoder(spec, merge=True)
            entry["models"][label] = {**score_model(encoder, data.tests, data.general_test), "speed": encode_speed(encoder, queries)}
        entry["targets"] = targets(name, entry["models"])
        results["adapters"][name] = entry
        print(name, json.dumps(entry["targets"]), flush=True)
    save("quality", results, markdown(results))


def targets(name: str, models: dict) -> dict:
    """The quality issue's targets, per test file, for the shipped adapter against the base and mpnet."""
    base, mpnet, tuned = models["base"], models["all-mpnet-base-v2"], models[name]
    checks = {}
    for test, scores in tuned.items():
        if not isinstance(scores, dict) or "replay_auc" not in scores:
            continue
        checks[test] = {
            "replay_above_base": scores["replay_auc"] > base[test]["replay_auc"],
            "replay_above_mpnet": scores["replay_auc"] > mpnet[test]["replay_auc"],
            "ap_above_base": scores["ap"] > base[test]["ap"],
            "ap_above_mpnet": scores["ap"] > mpnet[test]["ap"],
            "recall_at_p95_ratio": scores["recall_at_p95"] / base[test]["recall_at_p95"] if base[test]["recall_at_p95"] else None,
        }
        for key, goal in TARGETS.get(name, {}).get(test, {}).items():
            value = scores["recall_at_1"] - base[test]["recall_at_1"] if key == "recall_at_1_gain" else scores[key]
            checks[test][f"{key} >= {goal}"] = value >= goal
    for general in ("STS-B test", "MRPC test"):
        checks[general] = {"within_0.01_of_base": tuned[general] >= base[general] - 0.01}
    return checks


def markdown(results: dict) -> str:
    lines = [
        "# Shipped adapters on held-out test data (all-MiniLM-L6-v2 base, all-mpnet-base-v2 beside)",
        "",
        "Replay: populated-cache P-CHR AUC (cachetune.replay). R@1: each rewrite finds its title among all test titles.",
        "Seed spread: the 95% interval over the three seeds of the recipe that trained the adapter (experiments_NAME.md).",
        "",
    ]
    for name, entry in results["adapters"].items():
        models = entry["models"]
        tests = [test for test, value in models["base"].items() if isinstance(value, dict) and "replay_auc" in value]
        header = (
            ["model"]
            + [f"{t} {m}" for t in tests for m in ("replay AUC", "AP", "R@P0.95", "R@1")]
            + ["STS-B test", "MRPC test", "encode p50 ms"]
        )
        lines += [f"## {name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for label, scores in models.items():
            cells = [label]
            for test in tests:
                cells += [
                    f"{scores[test][m]:.3f}" if scores[test][m] is not None else "-"
                    for m in ("replay_auc", "ap", "recall_at_p95", "recall_at_1")
                ]
            cells += [f"{scores['STS-B test']:.3f}", f"{scores['MRPC test']:.3f}", f"{scores['speed']['latency_ms_p50']:.1f}"]
            lines.append("| " + " | ".join(cells) + " |")
        seeds = entry["seeds"]
        if seeds:
            spread = "; ".join(
                f"{test} replay {values['replay_auc'][0]:.3f} ± {values['replay_auc'][1]:.3f}, AP {values['ap'][0]:.3f} ± {values['ap'][1]:.3f}"
                for test, values in seeds["spread"].items()
                if isinstance(values, dict)
            )
            lines += ["", f"Seed spread of `{seeds['recipe']}` ({seeds['seeds']} seeds): {spread}."]
        else:
            lines += ["", "No seed spread: the shipped adapter is not the recipe the experiments chose (one training run)."]
        lines += [
            "",
            "Targets: "
            + "; ".join(
                f"{test}: " + ", ".join(f"{k} {v if not isinstance(v, float) else round(v, 2)}" for k, v in checks.items())
                for test, checks in entry["targets"].items()
            ),
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
