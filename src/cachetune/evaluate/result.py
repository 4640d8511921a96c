"""The evaluation report as a typed record: what `cachetune evaluate` writes to report.json and what every reader (the
CLI, the report writer, `threshold_of`, the pipeline) reads back.

The sections a reader acts on are typed field by field (models, operating thresholds, the pairs' metrics); the
per-kind tables of the trap suite, the conversations and the speed are kept as the mappings their writers made.
"""

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from cachetune.evaluate.pairs import OperatingPoints
from cachetune.inputs import Strict


class ModelEntry(Strict):
    spec: str  # as the user gave it
    model_bytes: int | None = None
    adapter_bytes: int | None = None


class DataFileEntry(Strict):
    file: str
    kind: str
    records: int


class ValDataEntry(Strict):
    file: str
    pairs: int


class PairResults(BaseModel):
    """One model's metrics on one file of labelled pairs."""

    model_config = ConfigDict(extra="forbid")
    ap: float
    roc_auc: float
    recall_at_p90: float
    recall_at_p95: float
    recall_at_p99: float
    at_thresholds: list[dict]  # precision, recall, false-hit rate, ... at each fixed threshold
    at_operating_thresholds: dict[str, dict | None] | None = None  # best_f05, target_precision: the same at each
    similarity: dict[str, float]  # mean cosine of the positives and of the negatives
    retrieval_recall_at_1: float | None
    replay: dict  # the populated-cache replay: curve, auc, oracle_auc, at
    replay_with_guards: dict | None = None

    def at_operating(self, fallback: bool) -> dict | None:
        """The metrics at the operating threshold: the best-F0.5 one when it is the fallback, else the target's."""
        points = self.at_operating_thresholds or {}
        return points.get("best_f05" if fallback else "target_precision")


class PairsSection(Strict):
    file: str
    pairs: int
    positives: int
    baseline: PairResults
    tuned: PairResults
    scores: dict[str, list[float]]
    labels: list[int]
    bootstrap: dict | None = None  # intervals per model and the differences' verdicts

    def results(self, name: str) -> PairResults:
        return self.tuned if name == "tuned" else self.baseline


class EvaluationReport(Strict):
    output: str
    models: dict[str, ModelEntry]
    test_data: list[DataFileEntry]
    val_data: ValDataEntry | None
    target_precision: float
    operating_thresholds: dict[str, OperatingPoints]
    pairs: list[PairsSection]
    triplets: list[dict]
    traps: dict
    conversations: dict
    cache_config: str | None = None
    speed: dict | None = None

    def write_json(self, path: Path) -> None:
        from cachetune.records import write_json

        write_json(path, self.model_dump(mode="json", exclude_unset=True))

    @classmethod
    def read(cls, path: Path) -> "EvaluationReport":
        return cls.model_validate_json(Path(path).read_text())
