"""The model card (README.md) written beside a trained adapter or model."""

from cachetune.train.record import TrainingRecord


def _metrics_line(scores: dict | None) -> str:
    if not scores:
        return "n/a"
    return (
        f"replay P-CHR AUC {scores['val_replay_auc']:.3f}, AP {scores['val_ap']:.3f}, "
        f"recall at precision 0.95 {scores['val_recall_at_p95']:.3f}"
    )


def model_card(info: TrainingRecord) -> str:
    adapter = info.adapter
    kind = (
        f"a LoRA adapter (rank {adapter.rank}, alpha {adapter.alpha}, on {', '.join(adapter.target_modules)})"
        if adapter.type == "lora"
        else "a fully fine-tuned model"
    )
    data = "\n".join(f"| {d.file} | {d.kind} | {d.rows:,} | {d.loss} | `{d.sha256[:12]}` |" for d in info.train_data)
    validation = info.validation
    hyper = info.hyperparameters
    command = " ".join(info.command) if info.command else "n/a"
    return f"""# cachetune embedding model

This folder is {kind} for `{info.base_model.name}`, trained by cachetune {info.cachetune_version}
to tell apart prompts that mean the same from look-alikes that do not, for a semantic cache.

## Use

```python
from cachetune.models import load_model
model = load_model("path/to/this/folder")   # the base model plus this adapter
vectors = model.encode(["How do I reverse a list in Python?"], normalize_embeddings=True)
```

With plain sentence-transformers: `SentenceTransformer("{info.base_model.name}").load_adapter("path/to/this/folder")`.
`cachetune export --model path/to/this/folder --output merged --merge` writes a merged model that needs no PEFT.

## Training

| file | kind | rows | loss | sha256 |
|---|---|---:|---|---|
{data}

Epochs {hyper["epochs"]}, batch size {hyper["batch_size"]}, learning rate {hyper["lr"]}, warm-up {hyper["warmup_ratio"]},
max sequence length {hyper["max_seq_length"]} tokens, seed {hyper["seed"]}; {info.steps} steps in {info.wall_time_seconds} s.
Trainable parameters: {info.trainable_parameters:,} of {info.total_parameters:,}.

## Validation (labelled pairs, {info.val_data.pairs if info.val_data else 0} of them)

- base model: {_metrics_line(validation.base)}
- this model (best step {validation.best_step}): {_metrics_line(validation.final)}

These are the validation pairs that chose the checkpoint; `cachetune evaluate` measures on held-out test data.

## Reproduce

```
{command}
```
"""
