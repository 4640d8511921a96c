"""Validation during training on labelled pairs: what checkpoint selection optimises."""

import numpy as np
from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

from cachetune.metrics import average_precision, pair_similarities, recall_at_precision
from cachetune.records import Pair

TARGET_PRECISION = 0.95


class PairValidation(SentenceEvaluator):
    """Average precision and recall at precision 0.95 of cosine similarity on labelled pairs.

    Inputs: `Pair` records with both labels. Primary metric: average precision (threshold-free and
    smoother than recall at one precision, so a better guide for picking a checkpoint).
    """

    def __init__(self, pairs: list[Pair], name: str = "val", batch_size: int = 64) -> None:
        super().__init__()
        self.first = [pair.query1 for pair in pairs]
        self.second = [pair.query2 for pair in pairs]
        self.labels = np.array([pair.label for pair in pairs])
        self.name = name
        self.batch_size = batch_size
        self.primary_metric = "ap"

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        scores = pair_similarities(
            lambda texts: model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True), self.first, self.second
        )
        recall, _ = recall_at_precision(self.labels, scores, TARGET_PRECISION)
        metrics = self.prefix_name_to_metrics({"ap": average_precision(self.labels, scores), "recall_at_p95": recall}, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics
