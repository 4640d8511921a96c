"""Metrics on triplets: the predecessor's margin, shown with what it is made of, and retrieval.

The margin (mean cos(anchor, positive) - cos(anchor, negative)) alone can rise while a cache gets
worse (both similarities can move up); we show both means, triplet accuracy, and retrieval: each
anchor searches the pool of all positives and negatives, its own positives being the relevant ones.
"""

import numpy as np

from cachetune.records import Triplet

RETRIEVAL_K = (1, 5, 10)


def triplet_metrics(triplets: list[Triplet], vector_of: dict[str, np.ndarray]) -> dict:
    anchors = np.stack([vector_of[t.anchor] for t in triplets])
    positives = np.stack([vector_of[t.positive] for t in triplets])
    negatives = np.stack([vector_of[t.hard_negative] for t in triplets])
    positive_cos = np.einsum("ij,ij->i", anchors, positives)
    negative_cos = np.einsum("ij,ij->i", anchors, negatives)
    return {
        "triplets": len(triplets),
        "mean_cos_anchor_positive": float(positive_cos.mean()),
        "mean_cos_anchor_negative": float(negative_cos.mean()),
        "margin": float((positive_cos - negative_cos).mean()),
        "accuracy": float((positive_cos > negative_cos).mean()),
        **retrieval(triplets, vector_of),
    }


def retrieval(triplets: list[Triplet], vector_of: dict[str, np.ndarray]) -> dict:
    """MRR@k and recall@k of each distinct anchor over the pool of every positive and negative."""
    pool = list(dict.fromkeys([t.positive for t in triplets] + [t.hard_negative for t in triplets]))
    position = {text: number for number, text in enumerate(pool)}
    relevant: dict[str, set[int]] = {}
    for t in triplets:
        relevant.setdefault(t.anchor, set()).add(position[t.positive])
    anchors = list(relevant)
    # An anchor that also sits in the pool (as someone's negative) must not find itself.
    scores = np.stack([vector_of[a] for a in anchors]) @ np.stack([vector_of[p] for p in pool]).T
    for row, anchor in enumerate(anchors):
        if anchor in position:
            scores[row, position[anchor]] = -np.inf
    order = np.argsort(-scores, axis=1)
    ranks = [next(rank for rank, item in enumerate(order[row], start=1) if item in relevant[a]) for row, a in enumerate(anchors)]
    ranks = np.array(ranks)
    result = {"anchors": len(anchors), "pool": len(pool)}
    for k in RETRIEVAL_K:
        result[f"mrr_at_{k}"] = float(np.where(ranks <= k, 1.0 / ranks, 0.0).mean())
        hits = [len(relevant[a] & set(order[row, :k].tolist())) / len(relevant[a]) for row, a in enumerate(anchors)]
        result[f"recall_at_{k}"] = float(np.mean(hits))
    return result
