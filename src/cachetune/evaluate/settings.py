"""Settings of `cachetune evaluate`: the one place each of them is declared (see cachetune.settings)."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator

from cachetune.decision import GuardName, VerifySettings
from cachetune.settings import PathList, StageSettings


class EvaluateSettings(StageSettings):
    """A tuned model and its baseline side by side on held-out labelled data."""

    PIPELINE_FILLS: ClassVar[frozenset[str]] = frozenset({"model", "output", "write_cache_config"})
    RUN_INPUTS: ClassVar[frozenset[str]] = frozenset({"test_data", "val_data"})

    model: str = Field(description="Adapter folder or shipped adapter name, merged model, ONNX export, or base model id/path.")
    test_data: PathList = Field(min_length=1, description="Labelled pairs and/or triplets the model never saw; repeat for several.")
    output: Path | None = Field(None, description="Report folder; default reports/<model name>.")
    baseline: str | None = Field(None, description="Default: the adapter's base model, else all-MiniLM-L6-v2.")
    val_data: Path | None = Field(None, description="Labelled pairs that choose each model's operating threshold.")
    thresholds: tuple[float, ...] = Field((0.80, 0.85, 0.90, 0.95), description="Fixed thresholds to report: --thresholds 0.80 0.85 0.90.")
    target_precision: float = Field(0.95, gt=0, lt=1, description="Precision the operating threshold must reach on validation.")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap resamples for 95% intervals (0: none).")
    seed: int = Field(42, description="Seed of the bootstrap and of the replay order.")
    speed: bool = Field(True, description="Measure encode latency and throughput.")
    guards: tuple[GuardName, ...] = Field(
        (), description="Also evaluate the decision with these verify guards: the replay and the trap suite with and without them."
    )
    top_k: int = VerifySettings.model_fields["top_k"]
    write_cache_config: Path | None = Field(
        None, description="Write a cache config (YAML) here: the tuned model as a domain at its operating threshold (needs --val-data)."
    )

    @model_validator(mode="after")
    def _cache_config_needs_a_threshold(self) -> "EvaluateSettings":
        if self.write_cache_config is not None and self.val_data is None:
            raise ValueError("write_cache_config needs val_data: the cache's threshold is chosen on validation pairs")
        return self

    def verify(self) -> VerifySettings | None:
        """The cache's `verify` settings evaluated: every candidate of the top k looked at, so the swept threshold alone
        decides what is served (as a cache whose candidate threshold is its similarity threshold does)."""
        return VerifySettings(guards=self.guards, top_k=self.top_k, candidate_threshold=-1.0) if self.guards else None


class FeedbackSettings(StageSettings):
    """What production says of the served hits: a cache's feedback_log read back, per domain, as the served hits'
    measured precision and the lowest threshold whose precision reaches the target with 95% confidence."""

    feedback_log: Path = Field(description="The cache's feedback_log (JSONL of records.Feedback, one report a line).")
    target_precision: float = EvaluateSettings.model_fields["target_precision"]
    output: Path | None = Field(None, description="Report file (JSON; a .md beside it); default FEEDBACK_LOG.report.json.")
