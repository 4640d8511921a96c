"""Metrics on labelled pairs: what a cache serves at a threshold, and how sure we are of it.

Thresholds for operating the cache are chosen on validation pairs and only then measured on test
pairs; a tuned model shifts its similarity scale, so each model gets its own threshold. The threshold for a
target precision is the lowest whose precision on validation reaches the target with 95% confidence (the
one-sided Clopper-Pearson lower bound), not the point estimate: a few hundred validation pairs make the point
estimate optimistic exactly where the threshold is chosen.
"""

from dataclasses import dataclass

import numpy as np
from scipy.stats import beta
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_auc_score

from cachetune.metrics import average_precision, recall_at_precision

RECALL_AT = (0.90, 0.95, 0.99)


def at_threshold(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """The cache's outcome when it serves every pair scoring >= threshold."""
    predicted = (scores >= threshold).astype(int)
    true_negative, false_hit, missed, hit = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    served = hit + false_hit
    return {
        "threshold": round(float(threshold), 4),
        "precision": float(hit / served) if served else 1.0,
        "recall": float(hit / (hit + missed)),
        "f1": float(2 * hit / (2 * hit + false_hit + missed)),
        "false_hit_rate": float(false_hit / (false_hit + true_negative)),
        "miss_rate": float(missed / (hit + missed)),
        "accuracy": float((hit + true_negative) / len(labels)),
    }


def best_f05_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold with the best F0.5 (precision weighted over recall: a false hit costs more than a miss)."""
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    denominator = 0.25 * precision + recall
    f05 = np.divide(1.25 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return float(thresholds[int(np.argmax(f05))])


def precision_lower_bound(correct: np.ndarray, served: np.ndarray, confidence: float = 0.95) -> np.ndarray:
    """One-sided Clopper-Pearson lower bound on precision, from `correct` of `served` hits."""
    correct, served = np.asarray(correct, dtype=float), np.asarray(served, dtype=float)
    bound = beta.ppf(1 - confidence, np.maximum(correct, 1e-12), served - correct + 1)
    return np.where(correct > 0, bound, 0.0)


def _precision_bounds(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each threshold a cache can serve at (a validation score, highest first) and its precision's 95% lower bound."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    correct, served = np.cumsum(sorted_labels), np.arange(1, len(labels) + 1)
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]  # a threshold serves every pair at its score
    return sorted_scores[last_of_tie], precision_lower_bound(correct, served)[last_of_tie]


def target_precision_threshold(labels: np.ndarray, scores: np.ndarray, target: float) -> tuple[float | None, float | None]:
    """The lowest threshold whose precision's 95% lower bound reaches `target`, and that bound; (None, None) if none."""
    thresholds, bounds = _precision_bounds(labels, scores)
    meets = np.flatnonzero(bounds >= target)
    if not len(meets):
        return None, None
    best = int(meets[-1])
    return float(thresholds[best]), float(bounds[best])


def highest_precision_bound(labels: np.ndarray, scores: np.ndarray) -> float:
    """The highest 95% lower bound of precision that any threshold reaches: how near a missed target came."""
    return float(_precision_bounds(labels, scores)[1].max())


def threshold_free(labels: np.ndarray, scores: np.ndarray) -> dict:
    return {
        "ap": average_precision(labels, scores),
        "roc_auc": float(roc_auc_score(labels, scores)),
        **{f"recall_at_p{round(p * 100)}": recall_at_precision(labels, scores, p)[0] for p in RECALL_AT},
    }


@dataclass(frozen=True)
class OperatingPoints:
    """Thresholds chosen on validation pairs, per model, and the one to operate at: the target-precision threshold,
    else (no threshold reaches the target with 95% confidence) the best-F0.5 one, marked as a fallback."""

    best_f05: float
    best_f05_precision: float  # precision on validation at best_f05
    target_precision: float | None
    target_precision_lower_bound: float | None  # the 95% lower bound of precision on validation at that threshold
    highest_lower_bound: float  # the highest such bound any threshold reaches (below the target when it is None)
    val_pairs: int
    threshold: float  # the operating threshold
    fallback: bool  # True: `threshold` is best_f05, because no threshold met the target

    @classmethod
    def choose(cls, labels: np.ndarray, scores: np.ndarray, target: float) -> "OperatingPoints":
        best_f05 = best_f05_threshold(labels, scores)
        target_threshold, bound = target_precision_threshold(labels, scores, target)
        return cls(
            best_f05=best_f05,
            best_f05_precision=at_threshold(labels, scores, best_f05)["precision"],
            target_precision=target_threshold,
            target_precision_lower_bound=bound,
            highest_lower_bound=highest_precision_bound(labels, scores),
            val_pairs=len(labels),
            threshold=best_f05 if target_threshold is None else target_threshold,
            fallback=target_threshold is None,
        )

    def explained(self, target: float) -> str:
        """The operating threshold in words, saying why when it is the fallback."""
        if not self.fallback:
            return f"{self.threshold:.3f} (precision >= {target} with 95% confidence on {self.val_pairs} validation pairs)"
        return (
            f"{self.threshold:.3f}, the best-F0.5 threshold (validation precision {self.best_f05_precision:.3f}): no threshold "
            f"reached precision {target} with 95% confidence on {self.val_pairs} validation pairs (the highest lower bound "
            f"reached was {self.highest_lower_bound:.3f}); more validation pairs, or a lower --target-precision, would set one"
        )


def bootstrap(
    labels: np.ndarray, scores_by_model: dict[str, np.ndarray], thresholds: dict[str, float | None], target: float, rounds: int, seed: int
) -> dict:
    """Percentile 95% intervals per model, and for the difference between the first two models from paired
    resamples (both models scored on the same resampled pairs); the difference reported is the full-data one.

    Metrics: AP, recall at `target` precision (threshold-free), and recall and false-hit rate at each
    model's validation-chosen threshold.
    """
    target_key = f"recall_at_p{round(target * 100)}"

    def metrics(sample_labels: np.ndarray, scores: np.ndarray, threshold: float | None) -> dict[str, float]:
        values = {"ap": average_precision(sample_labels, scores), target_key: recall_at_precision(sample_labels, scores, target)[0]}
        if threshold is not None:
            point = at_threshold(sample_labels, scores, threshold)
            values["recall_at_operating_threshold"] = point["recall"]
            values["false_hit_rate_at_operating_threshold"] = point["false_hit_rate"]
        return values

    names = list(scores_by_model)
    full = {name: metrics(labels, scores_by_model[name], thresholds[name]) for name in names}
    rng = np.random.default_rng(seed)
    samples: dict[str, dict[str, list[float]]] = {name: {metric: [] for metric in full[name]} for name in names}
    for _ in range(rounds):
        index = rng.integers(0, len(labels), len(labels))
        if labels[index].min() == labels[index].max():
            continue
        for name in names:
            for metric, value in metrics(labels[index], scores_by_model[name][index], thresholds[name]).items():
                samples[name][metric].append(value)
    intervals = {name: {metric: _interval(values) for metric, values in by_metric.items()} for name, by_metric in samples.items()}
    tuned, base = names[0], names[1]
    differences = {}
    for metric in sorted(samples[tuned].keys() & samples[base].keys()):
        low, high = _interval(np.array(samples[tuned][metric]) - np.array(samples[base][metric]))
        higher_is_better = not metric.startswith("false_hit")
        if low > 0:
            verdict = "better" if higher_is_better else "worse"
        elif high < 0:
            verdict = "worse" if higher_is_better else "better"
        else:
            verdict = "no significant difference"
        differences[metric] = {"difference": full[tuned][metric] - full[base][metric], "interval": [low, high], "verdict": verdict}
    return {"rounds": rounds, "intervals": intervals, "difference": differences}


def _interval(values) -> list[float]:
    low, high = np.percentile(np.asarray(values, dtype=float), [2.5, 97.5])
    return [float(low), float(high)]
