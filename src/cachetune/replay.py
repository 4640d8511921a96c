"""A populated cache replayed the way it fails: precision of hits against the cache-hit ratio (P-CHR).

From labelled pairs (first text, second text, same intent or not), as in arXiv 2606.19719:
- the cache holds every distinct second text;
- every distinct first text asks it, in a seeded order, its own string never being an answer;
- for every second query its labelled duplicates are taken out of the cache first, so about half the queries
  have no right answer and any hit for them is a false hit;
- for the others a hit is right only when the top-1 entry is one of its labelled duplicates.
Sweeping the threshold from 0 to 1 by 0.01 traces precision of hits against the share of queries served from
the cache; the area under it (trapezoids, the curve held flat to hit ratio 0) is the figure a cache lives by.
An oracle that ranks every right answer above every wrong one reaches p(1 + ln(1/p)), p being the share of
queries that have a right answer: that is the ceiling.

Also here: retrieval recall@1 (each second text of a same-intent pair looks for its first text among all first
texts of the set), the other way a cache is asked.
"""

import math
from dataclasses import dataclass

import numpy as np

from cachetune.records import Pair
from cachetune.text import seeded_order

THRESHOLDS = np.round(np.arange(0.0, 1.0001, 0.01), 2)


@dataclass(frozen=True)
class ReplaySet:
    """The cache's entries and its queries, derived from labelled pairs."""

    entries: list[str]  # distinct second texts: what the cache holds
    queries: list[str]  # distinct first texts, in seeded order
    duplicates: list[frozenset[int]]  # per query: indices of its labelled duplicates among the entries
    removed: list[bool]  # per query: its duplicates were taken out before it asked

    @classmethod
    def from_pairs(cls, pairs: list[Pair], seed: int = 42) -> "ReplaySet":
        entries = list(dict.fromkeys(pair.query2 for pair in pairs))
        index = {text: number for number, text in enumerate(entries)}
        duplicates_of: dict[str, set[int]] = {}
        for pair in pairs:
            found = duplicates_of.setdefault(pair.query1, set())
            if pair.label == 1:
                found.add(index[pair.query2])
        queries = seeded_order(list(duplicates_of), seed)
        return cls(entries, queries, [frozenset(duplicates_of[q]) for q in queries], [n % 2 == 1 for n in range(len(queries))])

    @property
    def answerable(self) -> float:
        """Share of queries with a right answer in the cache when they ask."""
        return sum(bool(d) and not r for d, r in zip(self.duplicates, self.removed)) / len(self.queries)


def oracle_auc(answerable: float) -> float:
    """The P-CHR area of a model that ranks every right answer first: p(1 + ln(1/p))."""
    return answerable * (1 + math.log(1 / answerable)) if answerable > 0 else 0.0


def candidates(replay: ReplaySet, vector_of: dict[str, np.ndarray], k: int = 1) -> list[list[tuple[int, float]]]:
    """Per query: its `k` most similar allowed entries as (entry index, similarity), most similar first."""
    entries = np.stack([vector_of[text] for text in replay.entries])
    queries = np.stack([vector_of[text] for text in replay.queries])
    similarity = queries @ entries.T
    entry_index = {text: number for number, text in enumerate(replay.entries)}
    found = []
    for row, query in enumerate(replay.queries):
        scores = similarity[row]
        if query in entry_index:
            scores[entry_index[query]] = -np.inf  # its own string is not an answer
        if replay.removed[row]:
            scores[list(replay.duplicates[row])] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        found.append([(int(index), float(scores[index])) for index in top if np.isfinite(scores[index])])
    return found


def top1(replay: ReplaySet, vector_of: dict[str, np.ndarray], decider=None) -> tuple[np.ndarray, np.ndarray]:
    """Per query: the similarity of the entry the cache would serve (the top-1 allowed entry, or with a
    `cachetune.decision.Decider` the best candidate its guards let through), and whether that entry is a right answer."""
    found = candidates(replay, vector_of, decider.top_k if decider is not None else 1)
    if decider is None:
        chosen = [(c[0][0], c[0][1]) if c else (None, None) for c in found]
    else:
        verdicts = [decider.best(query, [(replay.entries[i], s) for i, s in c]) for query, c in zip(replay.queries, found)]
        chosen = [(c[v.chosen][0], v.similarity) if v.chosen is not None else (None, None) for c, v in zip(found, verdicts)]
    best = np.array([score if score is not None else -np.inf for _, score in chosen])
    right = np.array(
        [
            index is not None and not removed and index in duplicates
            for (index, _), removed, duplicates in zip(chosen, replay.removed, replay.duplicates)
        ]
    )
    return best, right


def at_threshold(best: np.ndarray, right: np.ndarray, threshold: float) -> dict:
    """What the populated cache serves at one threshold."""
    hits = best >= threshold
    served = int(hits.sum())
    correct = int((hits & right).sum())
    return {
        "threshold": round(float(threshold), 4),
        "hit_ratio": served / len(best),
        "precision": correct / served if served else None,
        "false_hits": served - correct,
        "correct_hits": correct,
    }


def replay_metrics(
    replay: ReplaySet, vector_of: dict[str, np.ndarray], thresholds: dict[str, float | None] | None = None, decider=None
) -> dict:
    """The P-CHR curve, its area, the oracle's area and, per named threshold, the cache's outcome there; with a
    `decider`, of the decision (the similarity of the candidate it would serve is swept) instead of the cosine alone."""
    best, right = top1(replay, vector_of, decider)
    curve = [at_threshold(best, right, t) for t in THRESHOLDS]
    points = sorted((p["hit_ratio"], p["precision"]) for p in curve if p["precision"] is not None)
    if points and points[0][0] > 0:
        points.insert(0, (0.0, points[0][1]))  # held flat down to no hits
    ratios, precisions = (np.array(values) for values in zip(*points)) if points else (np.zeros(1), np.zeros(1))
    return {
        "queries": len(replay.queries),
        "entries": len(replay.entries),
        "answerable": replay.answerable,
        "auc": float(np.trapezoid(precisions, ratios)),
        "oracle_auc": oracle_auc(replay.answerable),
        "curve": curve,
        "at": {name: at_threshold(best, right, t) for name, t in (thresholds or {}).items() if t is not None},
    }


def pair_scores(pairs: list[Pair], vector_of: dict[str, np.ndarray]) -> np.ndarray:
    """Cosine similarity of each pair's two texts (the vectors are L2-normalised)."""
    return np.array([float(vector_of[p.query1] @ vector_of[p.query2]) for p in pairs])


def retrieval_recall_at_1(pairs: list[Pair], vector_of: dict[str, np.ndarray]) -> float | None:
    """Each second text of a same-intent pair looks for a first text it is labelled with, among all first texts."""
    firsts = list(dict.fromkeys(pair.query1 for pair in pairs))
    same: dict[str, set[int]] = {}
    index = {text: number for number, text in enumerate(firsts)}
    for pair in pairs:
        if pair.label == 1:
            same.setdefault(pair.query2, set()).add(index[pair.query1])
    if not same:
        return None
    questions = list(same)
    scores = np.stack([vector_of[text] for text in questions]) @ np.stack([vector_of[text] for text in firsts]).T
    return float(np.mean([int(np.argmax(row)) in same[text] for row, text in zip(scores, questions)]))
