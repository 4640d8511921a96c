"""Validation during training: what checkpoint selection and the general-domain guard measure.

`PairValidation` scores the domain's labelled pairs the way a cache is judged: average precision, recall at
precision 0.95, and the populated-cache replay (P-CHR AUC, see cachetune.replay); `select_by` picks which one
chooses the checkpoint. `GeneralValidation` scores general-domain pairs (STS-B: Spearman against the graded
similarity; pairs without grades, MRPC: average precision), so a tuned model can be refused, or pulled back
towards its base, when it forgets what the base model knew.
"""

from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

from cachetune.metrics import average_precision, recall_at_precision
from cachetune.records import Pair, read_records
from cachetune.replay import ReplaySet, pair_scores, replay_metrics

TARGET_PRECISION = 0.95


def vectors_of(model, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
    """Every distinct text encoded once, L2-normalised."""
    distinct = list(dict.fromkeys(texts))
    vectors = np.asarray(model.encode(distinct, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True), dtype=np.float32)
    return dict(zip(distinct, vectors))


class PairValidation(SentenceEvaluator):
    """AP, recall at precision 0.95 and replay P-CHR AUC of cosine similarity on labelled pairs.

    Args:
        pairs: `Pair` records with both labels.
        primary: the metric that picks the best checkpoint: `replay_auc` (what a cache lives by) or `ap`.
    """

    def __init__(self, pairs: list[Pair], primary: str = "replay_auc", name: str = "val") -> None:
        super().__init__()
        self.pairs = pairs
        self.labels = np.array([pair.label for pair in pairs])
        self.replay = ReplaySet.from_pairs(pairs)
        self.name = name
        self.primary_metric = primary

    def scores(self, model) -> dict[str, float]:
        vector_of = vectors_of(model, [text for pair in self.pairs for text in (pair.query1, pair.query2)])
        scores = pair_scores(self.pairs, vector_of)
        return {
            "ap": average_precision(self.labels, scores),
            "recall_at_p95": recall_at_precision(self.labels, scores, TARGET_PRECISION)[0],
            "replay_auc": replay_metrics(self.replay, vector_of)["auc"],
        }

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        metrics = self.prefix_name_to_metrics(self.scores(model), self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics


def file_label(path: Path) -> str:
    """A file by its folder and name (`mine-train/triplets.jsonl`): how training reports its files, with no path of
    the machine that trained and no two files of a run under one name."""
    return f"{Path(path).parent.name}/{Path(path).name}"


class GeneralValidation:
    """General-domain quality, per file: Spearman on graded pairs (STS-B), else average precision (MRPC)."""

    def __init__(self, files: tuple[Path, ...]) -> None:
        self.sets = {file_label(path): read_records(path, Pair) for path in files}

    def __call__(self, model) -> dict[str, float]:
        texts = [text for pairs in self.sets.values() for pair in pairs for text in (pair.query1, pair.query2)]
        vector_of = vectors_of(model, texts)
        results = {}
        for name, pairs in self.sets.items():
            scores = pair_scores(pairs, vector_of)
            graded = all(pair.similarity_score is not None for pair in pairs)
            results[name] = (
                float(spearmanr(scores, [p.similarity_score for p in pairs]).statistic)
                if graded
                else average_precision(np.array([p.label for p in pairs]), scores)
            )
        return results
