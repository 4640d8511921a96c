"""`cachetune train`: sentence-transformers' trainer with a PEFT LoRA adapter (or full fine-tuning).

Everything that can be wrong with the input (files, columns, losses, base model, output folder) is
checked by `plan` before a model is loaded. Training checkpoints to OUTPUT/checkpoints, validates on
labelled pairs at each checkpoint, keeps the best one by average precision, and resumes from the last
checkpoint with `--resume`. The finished folder holds the adapter, training_info.json and a model card.
Under `torchrun --nproc_per_node N` the same code trains with DDP; only rank 0 writes the result.
"""

import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cachetune.errors import InputError
from cachetune.models import TRAINING_INFO, ResolvedModel, files_sha256, resolve_base_model, save_adapter
from cachetune.records import Pair, read_labelled_pairs, record_texts, write_json
from cachetune.train.data import TrainingFile, preserve_dataset, read_training_file, to_dataset
from cachetune.train.losses import LOSSES, LossOptions, loss_for, loss_options, preservation_loss
from cachetune.train.model_card import model_card
from cachetune.train.record import (
    AdapterRecord,
    BaseModelRecord,
    DataFileRecord,
    GuardRecord,
    LossRecord,
    TrainingRecord,
    ValDataRecord,
    git_commit,
    recorder,
    versions,
)
from cachetune.train.settings import LossName, TrainSettings

CHECKPOINTS = "checkpoints"
SETTINGS_FILE = "settings.json"


@dataclass
class Plan:
    """What `train` will do, known before any model is loaded."""

    settings: TrainSettings
    base: ResolvedModel
    files: list[TrainingFile]
    file_losses: list[LossName]  # loss name per file
    loss_options: dict[LossName, LossOptions]  # per loss name, defaults filled in
    val_pairs: list[Pair] = field(default_factory=list)
    preserve_texts: list[str] = field(default_factory=list)  # general texts whose embeddings stay near the base model's


def plan(settings: TrainSettings) -> Plan:
    """Check the whole input before any model is loaded.

    Raises:
        InputError: an empty or unreadable file, a loss that cannot read the given files, validation pairs of one
            class, an output folder that already holds a run.
        ModelError: the base model cannot be found.
    """
    files, file_losses = [], []
    for path in settings.train_data:
        file = read_training_file(path)
        if not file.records:
            raise InputError(f"{path}: no training rows")
        loss = loss_for(file.kind, settings.loss)
        if loss is None:
            fits = [name for name, spec in LOSSES.items() if file.kind in spec.reads]
            raise InputError(
                f"{path}: holds {file.kind}, and no --loss given ({', '.join(settings.loss)}) learns from {file.kind}; "
                f"add one of: {', '.join(fits)}"
            )
        files.append(file)
        file_losses.append(loss)
    unused = [name for name in settings.loss if name not in file_losses]
    if unused:
        raise InputError(f"--loss {', '.join(unused)}: no training file of the kind it learns from")
    val_pairs = read_labelled_pairs(settings.val_data)
    labels = {pair.label for pair in val_pairs}
    if settings.val_data and labels != {0, 1}:
        names = ", ".join(map(str, settings.val_data))
        raise InputError(f"{names}: validation needs pairs with label 1 and label 0, found {sorted(labels) or 'no pairs'}")
    _check_output(settings)
    base = resolve_base_model(settings.base_model)
    options = {name: loss_options(name, settings) for name in settings.loss}
    return Plan(settings, base, files, file_losses, options, val_pairs, _preserve_texts(settings, sum(len(f.records) for f in files)))


def _preserve_texts(settings: TrainSettings, limit: int) -> list[str]:
    """The distinct texts of `preserve_data`, a seeded sample of at most `limit` (so they take at most half the steps)."""
    texts = {}
    for path in settings.preserve_data:
        found = record_texts(path)
        if not found:
            raise InputError(f"{path}: no texts to preserve")
        texts.update(dict.fromkeys(found))
    distinct = list(texts)
    return random.Random(settings.seed).sample(distinct, limit) if len(distinct) > limit else distinct


def _check_output(settings: TrainSettings) -> None:
    output = Path(settings.output)
    if (output / TRAINING_INFO).is_file():
        raise InputError(f"{output}: already holds a trained model; choose another --output or remove it")
    checkpoints = output / CHECKPOINTS
    if not settings.resume and checkpoints.is_dir() and any(checkpoints.glob("checkpoint-*")):
        raise InputError(f"{output}: holds checkpoints of an unfinished run; pass --resume to continue it, or choose another --output")
    saved = checkpoints / SETTINGS_FILE
    if settings.resume and saved.is_file():
        before = json.loads(saved.read_text())
        now = settings.record()
        changed = sorted(key for key in now if key != "resume" and before.get(key) != now[key])
        if changed:
            raise InputError(
                f"--resume with changed settings ({', '.join(changed)}); the checkpoints in {checkpoints} were made with others"
            )


def _batch_sampler(dataset, **kwargs):
    """Per dataset: intent-labelled texts need batches with several labels; triplets need no duplicate texts
    in a batch (a duplicate would be an in-batch 'negative' equal to the positive); pairs need neither."""
    from sentence_transformers.base.sampler import DefaultBatchSampler, GroupByLabelBatchSampler, NoDuplicatesBatchSampler
    from torch.utils.data import RandomSampler

    if "text" in dataset.column_names:
        return GroupByLabelBatchSampler(dataset, **kwargs)
    if "anchor" in dataset.column_names:
        return NoDuplicatesBatchSampler(dataset, **kwargs)
    return DefaultBatchSampler(RandomSampler(dataset, generator=kwargs["generator"]), **kwargs)


def _step(checkpoint: Path) -> int:
    return int(Path(checkpoint).name.rsplit("-", 1)[-1])


def last_complete_checkpoint(checkpoints: Path) -> Path | None:
    """The newest checkpoint that was fully written, removing any newer one a kill cut short.

    The trainer writes trainer_state.json last, so a checkpoint without a readable one is partial.
    """
    for checkpoint in sorted(Path(checkpoints).glob("checkpoint-*"), key=_step, reverse=True):
        try:
            json.loads((checkpoint / "trainer_state.json").read_text())
            return checkpoint
        except (OSError, ValueError):
            shutil.rmtree(checkpoint)
    return None


def train(settings: TrainSettings, command: list[str] | None = None) -> TrainingRecord | None:
    """Train and save the adapter (or model), training_info.json and a model card into `settings.output`.

    Steps: plan (check every input) -> the model (base + LoRA) -> datasets and losses -> validation of the base ->
    the sentence-transformers trainer, recording as it goes -> the update pulled towards the base (with general data)
    -> save.

    Args:
        settings: the stage's settings.
        command: the command line to record in training_info.json.

    Returns:
        The training record, as written to training_info.json; None in a DDP worker other than rank 0.

    Raises:
        InputError, ModelError: see `plan`; nothing is loaded or written before they are raised.
    """
    planned = plan(settings)
    started = time.time()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from cachetune.train.validation import GeneralValidation, PairValidation

    torch.manual_seed(settings.seed)
    model, preserved = _build_model(planned)
    datasets, losses = _datasets_and_losses(model, planned, preserved)
    evaluator = PairValidation(planned.val_pairs, settings.select_by) if planned.val_pairs else None
    general = GeneralValidation(settings.general_data) if settings.general_data else None
    record = _start_record(planned, model, command)
    record.validation.base = evaluator(model) if evaluator else None
    base_general = general(model) if general else None
    # What the update is measured from: a LoRA update is B @ A with B starting at zero; full fine-tuning moves every weight.
    start = {
        name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad and (not settings.lora or "lora_B" in name)
    }
    trainer = _trainer(model, planned, datasets, losses, evaluator, record)
    checkpoints = Path(settings.output) / CHECKPOINTS
    if trainer.is_world_process_zero():
        write_json(checkpoints / SETTINGS_FILE, settings.record())
    resume_from = last_complete_checkpoint(checkpoints) if settings.resume else None
    record.resumed_from_step = _step(resume_from) if resume_from else None
    metrics = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None).metrics
    if trainer.is_world_process_zero():
        record.general_guard = _pull_towards_base(model, start, evaluator, general, base_general, settings) if general else None
        record.validation.final = evaluator(model) if evaluator else None
        record.wall_time_seconds, record.train_seconds = round(time.time() - started, 1), round(metrics["train_runtime"], 2)
        record.train_rows_per_second = round(metrics["train_samples_per_second"], 2)
        _save(model, planned, record)
    _leave_process_group()
    return record if trainer.is_world_process_zero() else None


def _build_model(planned: Plan):
    """The base model with a fresh LoRA adapter (or every weight trainable), and the dataset of the general texts to
    preserve, embedded by the base before any weight moves."""
    from sentence_transformers import SentenceTransformer

    settings = planned.settings
    model = SentenceTransformer(planned.base.location)
    model.max_seq_length = settings.max_seq_length
    preserved = preserve_dataset(model, planned.preserve_texts) if planned.preserve_texts else None
    if settings.lora:
        from peft import LoraConfig, TaskType

        adapter = LoraConfig(
            r=settings.lora_rank, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
            target_modules=list(settings.target_modules), task_type=TaskType.FEATURE_EXTRACTION,
        )  # fmt: skip
        model.add_adapter(adapter)
    return model, preserved


def _datasets_and_losses(model, planned: Plan, preserved) -> tuple[dict, dict]:
    """One dataset per training file, in the layout its loss reads, and that loss; the preserved texts' too."""
    from sentence_transformers import SentenceTransformer

    datasets, losses = {}, {}
    guide = lambda: SentenceTransformer(planned.base.location, device=str(model.device))  # noqa: E731 (GIST's frozen guide)
    for number, (file, loss_name) in enumerate(zip(planned.files, planned.file_losses)):
        name = f"{number}_{file.path.stem}".replace(".", "_")
        datasets[name] = to_dataset(file, labelled_texts=loss_name == "hard-triplet")
        losses[name] = LOSSES[loss_name].build(model, planned.settings, planned.loss_options[loss_name], guide)
    if preserved is not None:
        datasets[f"{len(planned.files)}_preserve"] = preserved
        losses[f"{len(planned.files)}_preserve"] = preservation_loss(model, planned.settings.preserve_weight)
    return datasets, losses


def _trainer(model, planned: Plan, datasets: dict, losses: dict, evaluator, record: TrainingRecord):
    """sentence-transformers' trainer: checkpoints (about ten per run), validation at each, the best kept."""
    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    settings, output = planned.settings, Path(planned.settings.output)
    steps_per_epoch = sum(math.ceil(len(dataset) / settings.batch_size) for dataset in datasets.values())
    total_steps = settings.max_steps or math.ceil(steps_per_epoch * settings.epochs)
    checkpoint_steps = settings.checkpoint_steps or max(10, total_steps // 10)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if settings.tensorboard:
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(output / "tensorboard"))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output / CHECKPOINTS), num_train_epochs=settings.epochs, max_steps=settings.max_steps or -1,
        per_device_train_batch_size=settings.batch_size, learning_rate=settings.lr,
        warmup_steps=settings.warmup_ratio,  # transformers 5: a float below 1 is a fraction of all steps
        weight_decay=settings.weight_decay, seed=settings.seed, data_seed=settings.seed, batch_sampler=_batch_sampler,
        eval_strategy="steps" if evaluator else "no", eval_steps=checkpoint_steps, save_strategy="steps", save_steps=checkpoint_steps,
        save_total_limit=2, load_best_model_at_end=evaluator is not None,
        metric_for_best_model=f"eval_val_{settings.select_by}" if evaluator else None,
        logging_steps=max(1, min(10, checkpoint_steps)), report_to=["tensorboard"] if settings.tensorboard else [],
        use_cpu=not torch.cuda.is_available(), ddp_backend="gloo" if distributed and not torch.cuda.is_available() else None,
    )  # fmt: skip
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=datasets, loss=losses, evaluator=evaluator)
    trainer.add_callback(recorder(record))
    return trainer


def _save(model, planned: Plan, record: TrainingRecord) -> None:
    """The adapter (or whole model), training_info.json and the model card; the checkpoints go."""
    output = Path(planned.settings.output)
    if planned.settings.lora:
        save_adapter(model, output, planned.base.name)
    else:
        model.save(str(output))
    record.write(output)
    (output / "README.md").write_text(model_card(record))
    shutil.rmtree(output / CHECKPOINTS, ignore_errors=True)


def _leave_process_group() -> None:
    """Under DDP, every rank waits for rank 0's writing, then all leave the group together: a worker that exits while
    gloo's threads still run aborts ("terminate called without an active exception") and fails the whole torchrun."""
    import torch

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


SCALES = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)


def _pull_towards_base(model, start: dict, evaluator, general, base_general: dict, settings: TrainSettings) -> GuardRecord:
    """Scale the trained update by each of SCALES (WiSE-FT, arXiv 2109.01903; for LoRA, the adapter's scale) and keep
    the scale with the best validation score among those that lose at most `general_tolerance` on every general
    file; scale 0 is the base model itself, which always passes."""
    import torch

    trained = {name: p.detach().clone() for name, p in model.named_parameters() if name in start}
    parameters = dict(model.named_parameters())

    def set_scale(scale: float) -> None:
        with torch.no_grad():
            for name, initial in start.items():
                parameters[name].copy_(initial + scale * (trained[name] - initial))

    candidates = []
    for scale in SCALES:
        set_scale(scale)
        scores = general(model)
        passes = all(scores[name] >= base_general[name] - settings.general_tolerance for name in scores)
        validation = evaluator.scores(model)[settings.select_by] if evaluator else None
        candidates.append({"scale": scale, "general": scores, "passes": passes, f"val_{settings.select_by}": validation})
    passing = [c for c in candidates if c["passes"]]
    key = f"val_{settings.select_by}"
    chosen = max(passing, key=lambda c: (c[key] if c[key] is not None else 0.0, c["scale"]))
    set_scale(chosen["scale"])
    return GuardRecord(base=base_general, tolerance=settings.general_tolerance, chosen_scale=chosen["scale"], candidates=candidates)


def _start_record(planned: Plan, model, command: list[str] | None) -> TrainingRecord:
    """The record of what is about to be trained: base, files, losses and settings (no machine path in it)."""
    from cachetune import __version__
    from cachetune.train.validation import file_label

    settings = planned.settings
    hyperparameters = settings.record()
    for key in ("train_data", "val_data", "output", "resume", "base_model"):
        hyperparameters.pop(key)
    for key in ("general_data", "preserve_data"):
        hyperparameters[key] = [file_label(path) for path in getattr(settings, key)]
    lora = {
        "rank": settings.lora_rank,
        "alpha": settings.lora_alpha,
        "dropout": settings.lora_dropout,
        "target_modules": list(settings.target_modules),
    }
    files = [
        DataFileRecord(file=file_label(file.path), sha256=file.sha256, kind=file.kind, rows=len(file.records), loss=loss)
        for file, loss in zip(planned.files, planned.file_losses)
    ]
    val_data = (
        ValDataRecord(
            files=[file_label(path) for path in settings.val_data],
            pairs=len(planned.val_pairs),
            sha256=files_sha256(list(settings.val_data)),
        )
        if settings.val_data
        else None
    )
    return TrainingRecord(
        cachetune_version=__version__,
        base_model=BaseModelRecord(name=planned.base.name, sha256=planned.base.sha256),
        adapter=AdapterRecord(type="lora", **lora) if settings.lora else AdapterRecord(type="full"),
        train_data=files,
        preserve_texts=len(planned.preserve_texts),
        val_data=val_data,
        hyperparameters=hyperparameters,
        losses={name: LossRecord(about=LOSSES[name].about, **asdict(planned.loss_options[name])) for name in settings.loss},
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        total_parameters=sum(p.numel() for p in model.parameters()),
        versions=versions(),
        git_commit=git_commit(),
        command=command,
    )
