"""The gateway's context modes on the conversation set: which chat pairs each serves, by kind.

    .venv/bin/python benchmarks/conversations.py

The set (src/cachetune/evaluate/conversations.yaml, 28 scenarios, 168 pairs) is split by scenario: even-numbered
scenarios are validation, odd-numbered test. Per model (the base model on every domain; each shipped adapter on its
own domain's scenarios) and mode, the threshold is chosen on validation (0.70-0.98: the most should-hit pairs served
with the fewest wrong hits) and the test half is decided at it, as the gateway would (`cachetune.evaluate.
conversations.served`). Results: results/conversations.{json,md}.
"""

import numpy as np
from common import machine, save

from cachetune.conversation import CONTEXT_MODES
from cachetune.evaluate.conversations import MUST_NOT_HIT, SHOULD_HIT, conversation_metrics, conversation_pairs, served, texts_of
from cachetune.models import DEFAULT_BASE_MODEL, load_encoder
from cachetune.train.validation import vectors_of

THRESHOLDS = np.round(np.arange(0.70, 0.985, 0.01), 2)
MODELS = {"base": (DEFAULT_BASE_MODEL, None), "programming": ("programming", {"programming"}), "medical": ("medical", {"medical"})}


def chosen_threshold(pairs, vector_of, mode: str) -> float:
    """On validation pairs: the threshold with the fewest wrong hits, then the most should-hit pairs served."""
    kinds = np.array([p.kind for p in pairs])

    def score(threshold: float) -> tuple[int, int]:
        hits = served(pairs, vector_of, threshold, mode)
        return -int(hits[np.isin(kinds, MUST_NOT_HIT)].sum()), int(hits[np.isin(kinds, SHOULD_HIT)].sum())

    return float(max(THRESHOLDS, key=lambda t: (score(t), -t)))


def main() -> None:
    results = {"machine": machine(), "models": {}}
    for name, (spec, domains) in MODELS.items():
        pairs = conversation_pairs(domains)
        vector_of = vectors_of(load_encoder(spec), texts_of(pairs))
        val = [p for p in pairs if p.scenario % 2 == 0]
        test = [p for p in pairs if p.scenario % 2 == 1]
        rows = {}
        for mode in CONTEXT_MODES:
            threshold = chosen_threshold(val, vector_of, mode)
            rows[mode] = {
                "threshold": threshold,
                "val": conversation_metrics(val, vector_of, threshold)["modes"][mode],
                "test": conversation_metrics(test, vector_of, threshold)["modes"][mode],
                "all_at_0.9": conversation_metrics(pairs, vector_of, 0.9)["modes"][mode],
            }
        results["models"][name] = {"pairs": len(pairs), "domains": sorted({p.domain for p in pairs}), "modes": rows}
    save("conversations", results, markdown(results))


def markdown(results: dict) -> str:
    kinds = SHOULD_HIT + MUST_NOT_HIT
    lines = [
        "# The gateway's context modes on the conversation set",
        "",
        "Command: `.venv/bin/python benchmarks/conversations.py`. Each cell: pairs served / pairs. The first three kinds",
        "should be served; the last three must not be (another conversation's answer). Threshold chosen per mode on the",
        "validation scenarios (fewest wrong hits, then most should-hit served); test: the other scenarios.",
        "",
    ]
    for name, model in results["models"].items():
        lines += [f"## {name} ({model['pairs']} pairs: {', '.join(model['domains'])})", ""]
        lines += ["| context | threshold | split | " + " | ".join(kinds) + " | should-hit served | wrong hits |"]
        lines += ["|---|---:|---|" + "---:|" * (len(kinds) + 2)]
        for mode, row in model["modes"].items():
            for split in ("val", "test", "all_at_0.9"):
                r = row[split]
                cells = [f"{r['kinds'][k]['served']}/{r['kinds'][k]['pairs']}" for k in kinds]
                threshold = "0.90" if split == "all_at_0.9" else f"{row['threshold']:.2f}"
                label = "all, at 0.90" if split == "all_at_0.9" else split
                lines.append(
                    f"| {mode} | {threshold} | {label} | " + " | ".join(cells) + f" | {r['should_hit_served']:.3f} | {r['wrong_hits']} |"
                )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
