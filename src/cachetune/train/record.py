"""training_info.json as a typed record, filled while training runs.

As sentence-transformers' `SentenceTransformerModelCardCallback` fills its model card data from the trainer's
events, `recorder(record)` fills a `TrainingRecord`: the plan (base, files, losses, settings) when training starts,
the loss curve and each validation as they are logged, the steps and the best checkpoint when it ends. The model
card, the CLI and the experiments read its attributes; the JSON it writes is the file they read back.
"""

import subprocess
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cachetune.inputs import Strict
from cachetune.records import write_json


class BaseModelRecord(Strict):
    name: str
    sha256: str | None  # of the base's weights: what a cache compares its own base with


class AdapterRecord(Strict):
    type: Literal["lora", "full"]
    rank: int | None = None
    alpha: int | None = None
    dropout: float | None = None
    target_modules: list[str] | None = None


class DataFileRecord(Strict):
    file: str  # folder and name, never a machine path
    sha256: str
    kind: Literal["triplets", "pairs"]
    rows: int
    loss: str


class ValDataRecord(Strict):
    files: list[str]
    pairs: int
    sha256: str


class LossRecord(Strict):
    about: str
    temperature: float | None
    margin: float | None


class LossPoint(Strict):
    step: int
    loss: float


class ValidationRecord(Strict):
    base: dict[str, float] | None = None  # the base model's scores, before training
    during_training: list[dict[str, float]] = []  # {"step", "val_ap", ...} at each checkpoint
    best_step: int | None = None
    final: dict[str, float] | None = None  # the saved model's scores


class GuardCandidate(BaseModel):
    model_config = ConfigDict(extra="allow")  # plus val_<select_by>
    scale: float
    general: dict[str, float]
    passes: bool


class GuardRecord(Strict):
    base: dict[str, float]
    tolerance: float
    chosen_scale: float
    candidates: list[GuardCandidate]


class TrainingRecord(Strict):
    """What training_info.json says: what was trained on what, how, and what validation said."""

    cachetune_version: str
    base_model: BaseModelRecord
    adapter: AdapterRecord
    train_data: list[DataFileRecord]
    preserve_texts: int = 0
    val_data: ValDataRecord | None
    hyperparameters: dict
    losses: dict[str, LossRecord]
    trainable_parameters: int
    total_parameters: int
    world_size: int = 1
    steps: int = 0
    resumed_from_step: int | None = None
    epochs: float = 0.0
    loss_curve: list[LossPoint] = []
    validation: ValidationRecord = ValidationRecord()
    wall_time_seconds: float = 0.0
    train_seconds: float = 0.0  # the training loop alone (this run, if resumed)
    train_rows_per_second: float = 0.0
    versions: dict[str, str]
    git_commit: str | None = None
    command: list[str] | None = None
    general_guard: GuardRecord | None = None

    @classmethod
    def read(cls, folder: Path) -> "TrainingRecord":
        from cachetune.models import TRAINING_INFO

        return cls.model_validate_json((Path(folder) / TRAINING_INFO).read_text())

    def write(self, folder: Path) -> None:
        from cachetune.models import TRAINING_INFO

        write_json(Path(folder) / TRAINING_INFO, self.model_dump(mode="json"))


def recorder(record: TrainingRecord):
    """A `transformers.TrainerCallback` that fills `record` from the trainer's events: the loss curve and each
    validation as they are logged, the steps and the best checkpoint at the end. A resumed run starts from the history
    its checkpoint restored, so the record covers the whole run."""
    from transformers import TrainerCallback

    def take(entry: dict) -> None:
        if "loss" in entry:
            record.loss_curve.append(LossPoint(step=entry["step"], loss=entry["loss"]))
        if "eval_val_ap" in entry:
            scores = {key.removeprefix("eval_"): value for key, value in entry.items() if key.startswith("eval_val_")}
            record.validation.during_training.append({"step": entry["step"], **scores})

    class TrainingRecorder(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            record.loss_curve, record.validation.during_training = [], []
            for entry in state.log_history:  # restored from the checkpoint when resuming
                take(entry)

        def on_log(self, args, state, control, logs=None, **kwargs):
            take({**(logs or {}), "step": state.global_step})

        def on_train_end(self, args, state, control, **kwargs):
            record.steps, record.epochs, record.world_size = state.global_step, state.epoch, args.world_size
            if state.best_model_checkpoint:
                record.validation.best_step = int(Path(state.best_model_checkpoint).name.rsplit("-", 1)[-1])

    return TrainingRecorder()


def versions() -> dict[str, str]:
    import peft
    import sentence_transformers
    import torch
    import transformers

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
    }


def git_commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None
