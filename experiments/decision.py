"""The cache's decision: the cosine alone against the cosine with guards, per domain, and what the guards cost per check.

    .venv/bin/python experiments/decision.py [--no-speed]

For the shipped adapters (programming, medical) and the base model, on the data of support/measure.py: each
guard alone, all of them, and the set chosen on validation (greedy: a guard is added while it raises the validation
replay). Per variant, at each model's operating threshold chosen on validation (precision 0.95, else best F0.5): the
populated-cache replay P-CHR AUC on validation and on every held-out test file; the trap suites of
`cachetune.evaluate.traps` (hand-written pairs of the domain; rule-made traps of the test pairs), per kind the share
served, and the share of true rewordings served at <= 1% / 5% wrong. No training is involved (one run, deterministic).
Speed: `cachetune serve` over HTTP, 1 and 16 clients, 1,000 stored prompts, without and with all guards (at the
domain's threshold as candidate threshold, and at 0.5 so that every check looks at 5 candidates).
Results: results/decision.{json,md}.
"""

import argparse
import json

import numpy as np
from common import REPO, RESULTS, machine, save
from measure import domain_data, http_workload

from cachetune.decision import Decider, VerifySettings
from cachetune.evaluate.pairs import OperatingPoints
from cachetune.evaluate.traps import hand_traps, rule_traps, trap_suite_metrics
from cachetune.facts import GUARDS
from cachetune.models import DEFAULT_BASE_MODEL, load_encoder
from cachetune.records import Pair, read_records
from cachetune.replay import ReplaySet, pair_scores, replay_metrics
from cachetune.train.validation import vectors_of

SEED = 42
MODELS = {"base": DEFAULT_BASE_MODEL}


def guarded(threshold: float, guards: tuple[str, ...]) -> Decider | None:
    return Decider(threshold, VerifySettings(guards=guards, candidate_threshold=-1.0)) if guards else None


def choose_guards(val_replay: ReplaySet, vector_of: dict, threshold: float) -> tuple[tuple[str, ...], float]:
    """Greedy forward selection on the validation replay: add the guard that raises it most, while one does."""
    chosen: tuple[str, ...] = ()
    best = replay_metrics(val_replay, vector_of)["auc"]
    while True:
        trials = {
            g: replay_metrics(val_replay, vector_of, decider=guarded(threshold, chosen + (g,)))["auc"] for g in GUARDS if g not in chosen
        }
        if not trials or max(trials.values()) <= best:
            return chosen, best
        guard = max(trials, key=trials.get)
        chosen, best = chosen + (guard,), trials[guard]


def domain_results(domain: str) -> dict:
    data = domain_data(domain)
    val = read_records(data.val, Pair)
    tests = {name: read_records(path, Pair) for name, path in data.tests.items()}
    test_pairs = [pair for pairs in tests.values() for pair in pairs]
    traps = {"hand": hand_traps({domain}), "rule": rule_traps(test_pairs, SEED)}
    texts = [t for p in val + test_pairs for t in (p.query1, p.query2)] + [
        t for rows in traps.values() for p in rows for t in (p.stored, p.new)
    ]
    results = {}
    for model_name, spec in {domain: domain, **MODELS}.items():
        vector_of = vectors_of(load_encoder(spec), list(dict.fromkeys(texts)))
        labels = np.array([p.label for p in val])
        points = OperatingPoints.choose(labels, pair_scores(val, vector_of), 0.95)
        threshold = points.target_precision if points.target_precision is not None else points.best_f05
        val_replay = ReplaySet.from_pairs(val, SEED)
        replays = {name: ReplaySet.from_pairs(pairs, SEED) for name, pairs in tests.items()}
        chosen, _ = choose_guards(val_replay, vector_of, threshold)
        variants = {
            "cosine": (),
            **{g: (g,) for g in GUARDS},
            "all guards": GUARDS,
            f"chosen on val ({', '.join(chosen) or 'none'})": chosen,
        }
        rows = {}
        for variant, guards in variants.items():
            decider = guarded(threshold, guards)
            rows[variant] = {
                "guards": list(guards),
                "val_replay": replay_metrics(val_replay, vector_of, decider=decider)["auc"],
                "test_replay": {name: replay_metrics(r, vector_of, decider=decider)["auc"] for name, r in replays.items()},
                "traps": {name: trap_suite_metrics(rows_, vector_of, threshold, decider) for name, rows_ in traps.items()},
            }
        results[model_name] = {
            "threshold": threshold,
            "threshold_basis": "precision 0.95" if points.target_precision else "best F0.5",
            "variants": rows,
        }
    return results


def speed_results() -> list[dict]:
    from traffic import http_benchmark

    workload = http_workload(REPO.parent / "shared" / "data")
    all_guards = {"guards": list(GUARDS)}
    return [
        {"verify": "none", **http_benchmark(workload, "onnx", 16)},
        {"verify": "all guards", **http_benchmark(workload, "onnx", 16, verify=all_guards)},
        {"verify": "all guards, 5 candidates", **http_benchmark(workload, "onnx", 16, verify={**all_guards, "candidate_threshold": 0.5})},
    ]


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def markdown(results: dict) -> str:
    lines = [
        "# The decision: cosine alone vs guards",
        "",
        f"Machine: {results['machine']['cpu_model']}. Command: `.venv/bin/python experiments/decision.py`.",
        "",
    ]
    for domain, models in results["domains"].items():
        lines += [f"## {domain}", ""]
        for model, result in models.items():
            variants = result["variants"]
            tests = list(next(iter(variants.values()))["test_replay"])
            lines += [
                f"### {model}: threshold {result['threshold']:.3f} ({result['threshold_basis']} on validation)",
                "",
                "| variant | val replay | "
                + " | ".join(f"{t} replay" for t in tests)
                + " | hand: traps served | hand: rewordings served | hand: served at <= 1% / 5% wrong | rule: traps served | rule: rewordings served | rule: at <= 1% / 5% |",
                "|---|---:|" + "---:|" * len(tests) + "---:|---:|---:|---:|---:|---:|",
            ]
            for variant, row in variants.items():
                cells = [_f(row["val_replay"])] + [_f(row["test_replay"][t]) for t in tests]
                for name in ("hand", "rule"):
                    suite = row["traps"][name]
                    traps = sum(k["served"] for kind, k in suite["kinds"].items() if kind != "rewording")
                    trap_pairs = sum(k["pairs"] for kind, k in suite["kinds"].items() if kind != "rewording")
                    reworded = suite["kinds"]["rewording"]
                    cells += [
                        f"{traps}/{trap_pairs}",
                        f"{reworded['served']}/{reworded['pairs']}",
                        f"{_f(suite['served_at_wrong']['0.01'])} / {_f(suite['served_at_wrong']['0.05'])}",
                    ]
                lines.append(f"| {variant} | " + " | ".join(cells) + " |")
            cosine = variants["cosine"]["traps"]
            lines += ["", "Per trap kind, share served at the threshold (cosine -> all guards):", ""]
            for name in ("hand", "rule"):
                kinds = cosine[name]["kinds"]
                after = variants["all guards"]["traps"][name]["kinds"]
                lines.append(
                    f"- {name}: "
                    + "; ".join(f"{kind} {kinds[kind]['served']}/{kinds[kind]['pairs']} -> {after[kind]['served']}" for kind in kinds)
                )
            lines.append("")
    if results.get("speed"):
        lines += ["## Added latency per check over HTTP (ONNX encoder, micro-batching, 1,000 stored prompts)", ""]
        lines += ["| verify | 1 client p50 ms | p99 ms | 16 clients p50 ms | p99 ms | checks/s |", "|---|---:|---:|---:|---:|---:|"]
        for row in results["speed"]:
            checks = row.get("new_wordings", row)  # results/decision.json predates the new wordings' rows
            one, many = checks["one_client"], checks["sixteen_clients"]
            lines.append(
                f"| {row['verify']} | {one['p50_ms']} | {one['p99_ms']} | {many['p50_ms']} | {many['p99_ms']} | {many['checks_per_second']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument(
        "--speed-only", action="store_true", help="Measure the speed again; keep the quality figures of results/decision.json."
    )
    args = parser.parse_args()
    if args.speed_only:
        results = {**json.loads((RESULTS / "decision.json").read_text()), "machine": machine()}
    else:
        results = {"machine": machine(), "domains": {domain: domain_results(domain) for domain in ("programming", "medical")}}
    if not args.no_speed:
        results["speed"] = speed_results()
    save("decision", results, markdown(results))


if __name__ == "__main__":
    main()
