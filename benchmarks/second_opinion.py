"""A base-size second opinion near the threshold (issue 44, method 2): what it buys on held-out pairs, and what it costs.

    .venv/bin/python benchmarks/second_opinion.py [--second sentence-transformers/all-mpnet-base-v2 | PATH]

Per shipped adapter (the first model) and its test files (the data of benchmarks/quality.py: CoNaLa; mqp and the
RQE-valid test half), the populated-cache replay (P-CHR AUC) and, at the adapter's operating threshold (chosen on
its validation pairs as `cachetune evaluate` does), precision and hit ratio, for:
- the adapter alone; the second model alone;
- the blend everywhere: (1 - w) * the adapter's cosine + w * the second model's (what averaging both always costs);
- the cache's second opinion: the blend only for a candidate within the band around the threshold (the adapter's
  nearest entry, as a cache without `verify` looks at one), the adapter alone elsewhere; with the share of queries
  that reached the band (the second model's cost: it encodes only those).
The weight w and the band are chosen on the validation replay; the test files are never used to choose.
Results: results/second_opinion.{json,md}.
"""

import argparse

import numpy as np
from common import REPO, machine, save, table
from measure import EXPERIMENTS

from cachetune.decision import Verdict
from cachetune.evaluate.pairs import OperatingPoints
from cachetune.models import load_encoder
from cachetune.pipeline import run_pipeline
from cachetune.records import Pair, read_records
from cachetune.replay import ReplaySet, pair_scores, replay_metrics
from cachetune.train.validation import vectors_of

TESTS = {"programming": {"CoNaLa": "prepare-conala"}, "medical": {"mqp": "prepare-mqp", "RQE-valid test half": "prepare-rqe-valid"}}
WEIGHTS = (0.25, 0.5, 0.75)
BANDS = (0.03, 0.05, 0.1)


class SecondOpinion:
    """The cache's decision with a second model (a `decider` for the replay): the nearest entry by the first model,
    re-scored by the blend when its cosine is within `band` of `threshold`. Counts how often it was asked."""

    top_k = 1

    def __init__(self, second: dict, threshold: float, band: float, weight: float) -> None:
        self.second, self.threshold, self.band, self.weight, self.asked = second, threshold, band, weight, 0

    def best(self, prompt: str, candidates) -> Verdict:
        if not candidates:
            return Verdict(None, None, ())
        text, similarity = candidates[0]
        if abs(similarity - self.threshold) <= self.band:
            self.asked += 1
            similarity = (1 - self.weight) * similarity + self.weight * float(self.second[prompt] @ self.second[text])
        return Verdict(0, similarity, ())


def blended(first: dict, second: dict, weight: float) -> dict:
    """Vectors whose dot product is the weighted mean of both models' cosines (both L2-normalised)."""
    return {text: np.concatenate([np.sqrt(1 - weight) * first[text], np.sqrt(weight) * second[text]]) for text in first}


def scores(pairs: list[Pair], first: dict, second: dict, threshold: float, weight: float, band: float) -> dict:
    """Each way's replay AUC, and precision and hit ratio at `threshold`, on `pairs`."""
    replay = ReplaySet.from_pairs(pairs, 42)
    rows = {
        "adapter alone": replay_metrics(replay, first, {"t": threshold}),
        "second model alone": replay_metrics(replay, second),
        f"blend everywhere (w {weight})": replay_metrics(replay, blended(first, second, weight), {"t": threshold}),
    }
    opinion = SecondOpinion(second, threshold, band, weight)
    rows[f"second opinion (band {band}, w {weight})"] = replay_metrics(replay, first, {"t": threshold}, decider=opinion)
    result = {
        name: {"replay_auc": r["auc"], **{k: v for k, v in r["at"].get("t", {}).items() if k in ("precision", "hit_ratio")}}
        for name, r in rows.items()
    }
    result["band_share"] = opinion.asked / len(replay.queries)
    return result


def measure(domain: str, second_spec: str) -> dict:
    run, _ = run_pipeline(REPO / "configs" / f"{domain}.yaml", run_dir=EXPERIMENTS / domain / "data", stages=("prepare",))
    main_step = next(iter(TESTS[domain].values()))
    val = read_records(run.folder / main_step / "pairs.val.jsonl", Pair)
    tests = {name: read_records(run.folder / step / "pairs.test.jsonl", Pair) for name, step in TESTS[domain].items()}
    texts = list(dict.fromkeys(t for pairs in [val, *tests.values()] for p in pairs for t in (p.query1, p.query2)))
    first, second = (vectors_of(load_encoder(spec), texts) for spec in (domain, second_spec))
    threshold = OperatingPoints.choose(np.array([p.label for p in val]), pair_scores(val, first), 0.95).threshold
    val_replay = ReplaySet.from_pairs(val, 42)
    choice = max(
        ((w, b) for w in WEIGHTS for b in BANDS),
        key=lambda wb: replay_metrics(val_replay, first, decider=SecondOpinion(second, threshold, wb[1], wb[0]))["auc"],
    )
    return {
        "threshold": threshold,
        "weight": choice[0],
        "band": choice[1],
        "validation": scores(val, first, second, threshold, *choice),
        "tests": {name: scores(pairs, first, second, threshold, *choice) for name, pairs in tests.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--second", default="sentence-transformers/all-mpnet-base-v2", help="the second model's spec")
    args = parser.parse_args()
    results = {"machine": machine(), "second_model": args.second, "domains": {d: measure(d, args.second) for d in TESTS}}
    save("second_opinion", results, markdown(results))


def markdown(results: dict) -> str:
    lines = [
        f"# A second opinion near the threshold: {results['second_model']} beside each shipped adapter",
        "",
        f"Machine: {results['machine']['cpu_model']}. Command: `.venv/bin/python benchmarks/second_opinion.py`. Replay: P-CHR",
        "AUC; precision and hit ratio at the adapter's operating threshold (chosen on validation). Weight and band chosen",
        "on the validation replay; test files never used to choose. Band share: queries whose nearest entry's cosine",
        "fell in the band (the second model encodes only those).",
    ]
    for domain, result in results["domains"].items():
        lines += ["", f"## {domain} (threshold {result['threshold']:.3f}; chosen weight {result['weight']}, band ±{result['band']})", ""]
        for split, rows in [("validation", result["validation"]), *result["tests"].items()]:
            lines += [f"**{split}** (band share {rows['band_share']:.3f})", ""]
            cells = [[name, f"{r['replay_auc']:.3f}", f"{r['precision']:.3f}" if r.get("precision") is not None else "–",
                      f"{r['hit_ratio']:.3f}" if "hit_ratio" in r else "–"] for name, r in rows.items() if name != "band_share"]  # fmt: skip
            lines += [*table(["way", "replay AUC", "precision at t", "hit ratio at t"], cells), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
