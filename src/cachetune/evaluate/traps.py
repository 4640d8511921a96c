"""The trap suite: look-alike pairs that must not be served, beside true rewordings that should be.

Two sets, each pair a (stored prompt, new prompt, kind):

- `hand`: the pairs of traps.yaml, written for this project across five domains (kinds: rewording, negation,
  number, entity, scope, operation);
- `rule`: made from the held-out test pairs alone: each labelled rewording (q1, q2) stays a `rewording` row, and
  each trap the rules of `cachetune.synth.traps` make of q1 is stored in its place, q2 asking (kind: the rule's).

Per model and decision (the cosine alone; with `verify` guards, a candidate they refuse is never served), at the
operating threshold: per trap kind the false-hit rate (traps served), the share of rewordings served, and the
share of rewordings served while wrong answers stay <= 1% / <= 5% of those served (recall at precision 0.99 /
0.95, the figure cache operators compare).
"""

import random
from dataclasses import dataclass
from importlib import resources

import numpy as np
import yaml

from cachetune.decision import Decider
from cachetune.metrics import recall_at_precision
from cachetune.records import Pair
from cachetune.synth.traps import TrapPool, traps_of

REWORDING = "rewording"
WRONG_AT_MOST = (0.01, 0.05)


@dataclass(frozen=True)
class TrapPair:
    stored: str
    new: str
    kind: str  # rewording: should be served; any other kind: must not be
    domain: str


def hand_traps(domains: set[str] | None = None) -> list[TrapPair]:
    """The hand-written pairs of traps.yaml, of `domains` (None or none of them there: every domain)."""
    data = yaml.safe_load(resources.files("cachetune.evaluate").joinpath("traps.yaml").read_text())
    rows = {name: [TrapPair(stored, new, kind, name) for kind, stored, new in pairs] for name, pairs in data["pairs"].items()}
    chosen = [name for name in rows if domains and name in domains] or list(rows)
    return [pair for name in chosen for pair in rows[name]]


def rule_traps(pairs: list[Pair], seed: int) -> list[TrapPair]:
    """Rule-made traps of labelled test pairs: names and qualifiers are swapped among the same pairs' texts only."""
    rng = random.Random(seed)
    pool = TrapPool.from_texts([text for pair in pairs for text in (pair.query1, pair.query2)])
    rows = []
    for pair in pairs:
        if pair.label == 1:
            rows.append(TrapPair(pair.query1, pair.query2, REWORDING, pair.domain))
            rows += [TrapPair(trap, pair.query2, kind, pair.domain) for kind, trap in traps_of(pair.query1, rng, pool)]
    return rows


def trap_suite_metrics(pairs: list[TrapPair], vector_of: dict[str, np.ndarray], threshold: float | None, decider: Decider | None) -> dict:
    """What a cache at `threshold` serves of each kind, with the cosine alone or with `decider`'s guards.

    Returns:
        {"pairs", "threshold", "kinds": {kind: {"pairs", "served"}}, "served_at_wrong": {"0.01": share, "0.05": share},
        "examples": the most similar traps served}.
    """
    similarity = np.array([float(vector_of[p.stored] @ vector_of[p.new]) for p in pairs])
    if decider is not None:
        refused = np.array([decider.best(p.new, [(p.stored, s)]).chosen is None for p, s in zip(pairs, similarity)])
        similarity = np.where(refused, -np.inf, similarity)
    kinds = np.array([p.kind for p in pairs])
    served = similarity >= threshold if threshold is not None else np.zeros(len(pairs), bool)
    labels = (kinds == REWORDING).astype(int)
    order = np.argsort(-np.where(served, similarity, -np.inf), kind="stable")
    wrong_served = [i for i in order if served[i] and kinds[i] != REWORDING]
    return {
        "pairs": len(pairs),
        "threshold": threshold,
        "kinds": {kind: {"pairs": int((kinds == kind).sum()), "served": int(served[kinds == kind].sum())} for kind in dict.fromkeys(kinds)},
        "served_at_wrong": {str(wrong): _served_at_precision(labels, similarity, 1 - wrong) for wrong in WRONG_AT_MOST},
        "examples": [
            {"similarity": round(float(similarity[i]), 4), "kind": kinds[i], "stored": pairs[i].stored, "new": pairs[i].new}
            for i in wrong_served[:5]
        ],
    }


def _served_at_precision(labels: np.ndarray, similarity: np.ndarray, precision: float) -> float:
    """The share of all rewordings served at the best threshold of that precision; a refused pair is never served."""
    open_ = np.isfinite(similarity)
    if not labels[open_].any():
        return 0.0
    return recall_at_precision(labels[open_], similarity[open_], precision)[0] * labels[open_].sum() / labels.sum()
