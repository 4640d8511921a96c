"""Pair metrics on similarity scores, with scikit-learn underneath.

A semantic cache serves a stored answer when similarity >= threshold, so a pair with label 1 above the
threshold is a correct hit, label 0 above it a false hit (a wrong answer served), label 1 below it a
missed hit. Shared by training (checkpoint selection) and evaluation (reports).
"""

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve

from cachetune.errors import InputError


def check_labels(labels: np.ndarray, where: str) -> None:
    present = set(np.unique(labels).tolist())
    if present != {0, 1}:
        raise InputError(f"{where}: needs pairs with label 1 and label 0, found only label {sorted(present)}")


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(average_precision_score(labels, scores))


def recall_at_precision(labels: np.ndarray, scores: np.ndarray, min_precision: float) -> tuple[float, float | None]:
    """Highest recall at any threshold whose precision is >= `min_precision`, and the lowest such threshold.

    Returns (0.0, None) when no threshold reaches that precision.
    """
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    # precision/recall have one more entry than thresholds: the last is (1, 0) with no threshold.
    meets = precision[:-1] >= min_precision
    if not meets.any():
        return 0.0, None
    best = int(np.argmax(np.where(meets, recall[:-1], -1.0)))
    return float(recall[best]), float(thresholds[best])


def pair_similarities(encode, first: list[str], second: list[str]) -> np.ndarray:
    """Cosine similarity of each (first[i], second[i]); every distinct text is encoded once.

    `encode(texts) -> array` is any encoder (a SentenceTransformer's `encode`, an ONNX session).
    """
    texts = list(dict.fromkeys(first + second))
    vectors = np.asarray(encode(texts), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    row = {text: number for number, text in enumerate(texts)}
    a = vectors[[row[text] for text in first]]
    b = vectors[[row[text] for text in second]]
    return np.einsum("ij,ij->i", a, b)
