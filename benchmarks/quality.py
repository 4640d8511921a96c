"""Every shipped adapter against its base model, on held-out data it was neither trained nor tuned on.

For each adapter in src/cachetune/adapters/, its pipeline config (configs/NAME.yaml) says which test
files are held out (the test split of the groups in ../shared/data) and which validation pairs choose the
operating threshold. Reported, with 95% bootstrap intervals: AP, recall at precision 0.95, and the
false-hit rate at the threshold chosen on validation. Then what a domain adapter costs outside its
domain (STS-B test: Spearman of cosine to the gold score; MRPC test: AP), and single-query latency of
the merged adapter against the base model.

    .venv/bin/python benchmarks/quality.py [--bootstrap 1000]
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import machine, save
from scipy.stats import spearmanr

from cachetune.data.prepare import prepare
from cachetune.data.settings import PrepareSettings
from cachetune.evaluate.run import evaluate
from cachetune.evaluate.settings import EvaluateSettings
from cachetune.evaluate.speed import encode_speed
from cachetune.metrics import average_precision, pair_similarities
from cachetune.models import load_model, shipped_adapters
from cachetune.pipeline import run_pipeline
from cachetune.records import Pair, Query, read_records

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"recall_ratio": 1.5, "mrpc_drop": 0.02}


def general_pairs(data_root: Path, folder: Path) -> dict[str, list[Pair]]:
    sets = {}
    for name, source, file in (("stsb", "stsb", "stsb-sts-test.tsv"), ("mrpc", "mrpc", "msr_paraphrase_test.txt")):
        prepare(PrepareSettings(source=source, input=str(data_root / "general" / file), output=folder / name, max_chars=400, val=0, test=1))
        sets[name] = read_records(folder / name / "pairs.test.jsonl", Pair)
    return sets


def general_scores(model, sets: dict[str, list[Pair]]) -> dict:
    def scores(pairs: list[Pair]) -> np.ndarray:
        return pair_similarities(lambda texts: model.encode(texts, batch_size=64), [p.query1 for p in pairs], [p.query2 for p in pairs])

    stsb, mrpc = sets["stsb"], sets["mrpc"]
    return {
        "stsb_spearman": float(spearmanr(scores(stsb), [p.similarity_score for p in stsb]).statistic),
        "mrpc_ap": average_precision(np.array([p.label for p in mrpc]), scores(mrpc)),
    }


def adapter_quality(name: str, bootstrap: int, folder: Path) -> dict:
    config_path = REPO / "configs" / f"{name}.yaml"
    run, _ = run_pipeline(config_path, stages=("prepare",))
    planned = dict(run.stages)["evaluate"]
    tests = tuple(run.folder / reference for reference in planned.test_data)
    val = run.folder / planned.val_data
    report = evaluate(EvaluateSettings(model=name, test_data=tests, output=folder / name, val_data=val, bootstrap=bootstrap, speed=False))
    results = {"config": f"configs/{name}.yaml", "val": str(val.relative_to(run.folder)), "tests": {}}
    for section in report["pairs"]:
        boot = section["bootstrap"]
        entry = {"pairs": section["pairs"]}
        for model in ("baseline", "tuned"):
            point = section[model]["at_operating_thresholds"]["target_precision"]
            entry[model] = {
                "ap": section[model]["ap"],
                "ap_interval": boot["intervals"][model]["ap"],
                "recall_at_p95": section[model]["recall_at_p95"],
                "recall_at_p95_interval": boot["intervals"][model]["recall_at_p95"],
                "threshold": point["threshold"],
                "precision_at_threshold": point["precision"],
                "false_hit_rate_at_threshold": point["false_hit_rate"],
                "false_hit_rate_interval": boot["intervals"][model].get("false_hit_rate_at_operating_threshold"),
            }
        base, tuned = entry["baseline"], entry["tuned"]
        entry["targets"] = {
            "ap_intervals_apart": tuned["ap_interval"][0] > base["ap_interval"][1],
            "recall_intervals_apart": tuned["recall_at_p95_interval"][0] > base["recall_at_p95_interval"][1],
            "recall_ratio": tuned["recall_at_p95"] / base["recall_at_p95"] if base["recall_at_p95"] else float("inf"),
        }
        results["tests"][str(Path(section["file"]).relative_to(run.folder))] = entry
    queries = [q.text for q in read_records(run.folder / f"prepare-{run.config.prepare[0].name}" / "queries.test.jsonl", Query)][:200]
    results["latency"] = {
        "base": encode_speed(load_model(None), queries),
        "merged": encode_speed(load_model(name, merge=True), queries),
        "switched": encode_speed(load_model(name), queries),
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    results = {"benchmark": "quality", "machine": machine(), "adapters": {}}
    with tempfile.TemporaryDirectory() as folder:
        general = general_pairs(args.data, Path(folder) / "general")
        results["general"] = {"base": general_scores(load_model(None), general)}
        for name in shipped_adapters():
            results["adapters"][name] = adapter_quality(name, args.bootstrap, Path(folder))
            results["general"][name] = general_scores(load_model(name, merge=True), general)
            print(name, results["adapters"][name]["tests"], flush=True)
    save("quality", results, markdown(results))


def _ci(value: float, interval: list[float]) -> str:
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def markdown(results: dict) -> str:
    lines = [
        "# Shipped adapters against their base model (all-MiniLM-L6-v2), held-out test data",
        "",
        "Thresholds are chosen on each config's validation pairs (precision >= 0.95 there) and applied to the test pairs.",
        "",
        "| adapter | test set (pairs) | model | AP [95% CI] | recall@P0.95 [95% CI] | threshold | false-hit rate [95% CI] |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for name, adapter in results["adapters"].items():
        for test, entry in adapter["tests"].items():
            for model in ("baseline", "tuned"):
                m = entry[model]
                fhr = (
                    _ci(m["false_hit_rate_at_threshold"], m["false_hit_rate_interval"])
                    if m["false_hit_rate_interval"]
                    else f"{m['false_hit_rate_at_threshold']:.3f}"
                )
                label = "base" if model == "baseline" else name
                lines.append(
                    f"| {name} | {test} ({entry['pairs']}) | {label} | {_ci(m['ap'], m['ap_interval'])} | {_ci(m['recall_at_p95'], m['recall_at_p95_interval'])} | {m['threshold']:.3f} | {fhr} |"
                )
    lines += [
        "",
        "Targets per test set:",
        "",
        "| adapter | test set | AP intervals apart | recall@P0.95 intervals apart | recall@P0.95 ratio (target >= 1.5) |",
        "|---|---|---|---|---:|",
    ]
    for name, adapter in results["adapters"].items():
        for test, entry in adapter["tests"].items():
            t = entry["targets"]
            lines.append(
                f"| {name} | {test} | {'yes' if t['ap_intervals_apart'] else 'no'} | {'yes' if t['recall_intervals_apart'] else 'no'} | {t['recall_ratio']:.2f} |"
            )
    general = results["general"]
    lines += [
        "",
        "Outside the domain (general English):",
        "",
        "| model | STS-B test Spearman | MRPC test AP | MRPC AP change (target >= -0.02) |",
        "|---|---:|---:|---:|",
    ]
    for name, scores in general.items():
        change = "" if name == "base" else f"{scores['mrpc_ap'] - general['base']['mrpc_ap']:+.3f}"
        lines.append(f"| {name} | {scores['stsb_spearman']:.3f} | {scores['mrpc_ap']:.3f} | {change} |")
    lines += [
        "",
        "Single-query encode latency on this machine (ms):",
        "",
        "| adapter | base p50 / p99 | merged p50 / p99 | switched (unmerged) p50 / p99 |",
        "|---|---|---|---|",
    ]
    for name, adapter in results["adapters"].items():
        latency = adapter["latency"]
        cells = " | ".join(
            f"{latency[k]['latency_ms_p50']:.1f} / {latency[k]['latency_ms_p99']:.1f}" for k in ("base", "merged", "switched")
        )
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
