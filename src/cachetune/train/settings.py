"""Settings of `cachetune train`: the one place each of them is declared (see cachetune.settings)."""

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from cachetune.settings import NameList, PathList, StageSettings

LossName = Literal["mnr", "cached-mnr", "gist", "triplet", "infonce", "cosine", "hard-triplet", "online-contrastive"]
Distance = Literal["cosine", "euclidean"]
Mining = Literal["hardest", "semi-hard", "all"]


class TrainSettings(StageSettings):
    """Train a LoRA adapter (or every weight) with sentence-transformers losses that use the hard negatives."""

    PIPELINE_FILLS: ClassVar[frozenset[str]] = frozenset({"output", "resume", "base_model"})
    RUN_INPUTS: ClassVar[frozenset[str]] = frozenset({"train_data", "val_data", "general_data", "preserve_data"})

    train_data: PathList = Field(min_length=1, description="Triplet or pair JSONL; repeat for mixed inputs.")
    output: Path = Field(description="Folder for the adapter (or model), training_info.json and a model card.")
    val_data: PathList = Field(
        (),
        description="Labelled pairs (or triplets: their positive and negative pairs) for validation at each checkpoint, the "
        "best one kept; repeat for several.",
    )
    select_by: Literal["replay_auc", "ap"] = Field(
        "replay_auc", description="Validation metric that picks the checkpoint: populated-cache replay P-CHR AUC, or pair AP."
    )
    general_data: PathList = Field(
        (),
        description="General-domain pairs (e.g. STS-B dev, MRPC train) the model must not forget: after training, the "
        "update is scaled towards the base (WiSE-FT) to the scale with the best validation score that keeps each within "
        "general_tolerance of the base model.",
    )
    general_tolerance: float = Field(0.01, ge=0, description="Largest allowed loss on each general_data file (Spearman or AP).")
    preserve_data: PathList = Field(
        (),
        description="Files of general texts (queries, pairs or triplets, e.g. STS-B train) whose embeddings training keeps "
        "near the base model's: a batch of them now and then, with a cosine-distance loss to the base model's vectors "
        "(a seeded sample of at most as many texts as training rows).",
    )
    preserve_weight: float = Field(1.0, gt=0, description="Weight of the preserve_data loss against the training losses.")
    base_model: str | None = Field(None, description="Local folder or hub id; default: packaged all-MiniLM-L6-v2.")
    loss: tuple[LossName, ...] = Field(
        ("mnr",), min_length=1, description="One per kind of training file; repeat for mixed inputs (--loss mnr --loss online-contrastive)."
    )
    epochs: float = Field(1.0, gt=0, description="Passes over the training data.")
    batch_size: int = Field(64, ge=2, description="Rows per step (per process under torchrun).")
    lr: float = Field(2e-4, gt=0, description="Peak learning rate (linear warm-up, then linear decay).")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of the steps spent warming up.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    temperature: float | None = Field(None, gt=0, description="Ranking losses: scale = 1/temperature (mnr 0.05, infonce 0.07, gist 0.01).")
    margin: float | None = Field(None, description="Triplet and pair losses; default by loss and distance.")
    distance: Distance = Field("cosine", description="triplet and hard-triplet distance.")
    mining: Mining = Field("hardest", description="hard-triplet: which triplets of a batch count.")
    mini_batch_size: int = Field(32, ge=1, description="cached-mnr: rows per forward pass (memory), not the effective batch.")
    lora: bool = Field(True, description="Train a LoRA adapter; --no-lora fine-tunes every weight.")
    lora_rank: int = Field(8, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(16, ge=1, description="LoRA alpha (the update is scaled by alpha / rank).")
    lora_dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: NameList = Field(("query", "value"), description="Module names that get LoRA, e.g. query,key,value,dense.")
    max_seq_length: int = Field(128, ge=8, description="Tokens per text; longer texts are cut (cost grows with it).")
    max_steps: int | None = Field(None, ge=1, description="Stop after N steps (overrides epochs).")
    checkpoint_steps: int | None = Field(None, ge=1, description="Checkpoint and validate every N steps; default about 10 per run.")
    resume: bool = Field(False, description="Continue an interrupted run from its last complete checkpoint.")
    seed: int = Field(42, description="Seed of the initialisation, the data order and dropout.")
    tensorboard: bool = Field(False, description="Write TensorBoard logs to OUTPUT/tensorboard.")

    @model_validator(mode="after")
    def _modules(self) -> "TrainSettings":
        if self.lora and not self.target_modules:
            raise ValueError("target_modules is empty")
        return self
