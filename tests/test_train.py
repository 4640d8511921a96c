import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cachetune.cli import flag
from cachetune.errors import InputError
from cachetune.models import DEFAULT_BASE_MODEL, ModelError, load_model
from cachetune.records import Pair, Triplet, read_records, write_jsonl
from cachetune.settings import build
from cachetune.train.data import read_training_file, to_dataset
from cachetune.train.losses import LOSSES, loss_options
from cachetune.train.record import TrainingRecord
from cachetune.train.settings import TrainSettings
from cachetune.train.trainer import train

pytestmark = pytest.mark.training  # Trainer runs, torchrun, killed and resumed runs


def settings(output: Path, *train_data: Path, **overrides) -> TrainSettings:
    values = {"batch_size": 16, "lr": 2e-4, "max_seq_length": 48, **overrides}
    return TrainSettings(train_data=tuple(train_data), output=output, **values)


def run_cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "cachetune", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )


def test_lora_adapter_is_small_portable_and_reports_its_parameters(conala_triplets, conala_prepared, tmp_path):
    info = train(
        settings(tmp_path / "model", conala_triplets, val_data=conala_prepared / "pairs.val.jsonl", max_steps=4, checkpoint_steps=2)
    )
    assert info.trainable_parameters == 73_728
    assert (tmp_path / "model" / "adapter_model.safetensors").stat().st_size < 1_000_000
    assert not (tmp_path / "model" / "checkpoints").exists()
    for name in ("adapter_config.json", "training_info.json", "README.md"):
        text = (tmp_path / "model" / name).read_text()
        assert "site-packages" not in text and str(tmp_path) not in text, name
    assert json.loads((tmp_path / "model" / "adapter_config.json").read_text())["base_model_name_or_path"] == DEFAULT_BASE_MODEL
    assert info.base_model.sha256 and len(info.train_data[0].sha256) == 64
    assert info.hyperparameters["lr"] == 2e-4 and info.versions["torch"] == torch.__version__
    assert [entry["step"] for entry in info.validation.during_training] == [2, 4]
    # the checkpoint kept is the one with the best replay AUC on validation (select_by's default)
    best = max(info.validation.during_training, key=lambda entry: entry["val_replay_auc"])
    assert info.validation.best_step == best["step"]
    assert info.validation.final["val_replay_auc"] == pytest.approx(best["val_replay_auc"], abs=1e-3)
    assert TrainingRecord.read(tmp_path / "model") == info  # what was returned is what was written

    moved = tmp_path / "elsewhere" / "adapter"
    moved.parent.mkdir()
    (tmp_path / "model").rename(moved)
    model = load_model(str(moved))
    assert model.max_seq_length == 48
    pairs = read_records(conala_prepared / "pairs.val.jsonl", Pair)
    from cachetune.metrics import average_precision, pair_similarities

    scores = pair_similarities(model.encode, [p.query1 for p in pairs], [p.query2 for p in pairs])
    assert average_precision([p.label for p in pairs], scores) == pytest.approx(info.validation.final["val_ap"], abs=1e-6)


def test_mnr_learns_from_the_hard_negative_column(conala_triplets):
    from sentence_transformers import SentenceTransformer

    from cachetune.packaged import minilm as packaged_minilm

    file = read_training_file(conala_triplets)
    dataset = to_dataset(file, labelled_texts=False)
    assert dataset.column_names == ["anchor", "positive", "negative"]
    model = SentenceTransformer(str(packaged_minilm()))
    defaults = settings(Path("unused"), Path("unused"))
    loss = LOSSES["mnr"].build(model, defaults, loss_options("mnr", defaults), None)
    rows = dataset.select(range(8))

    def loss_value(negatives: list[str]) -> float:
        features = [model.preprocess(rows[column]) for column in ("anchor", "positive")] + [model.preprocess(negatives)]
        with torch.no_grad():
            return float(loss(features, None))

    # With the positive repeated as its own "negative" the softmax splits between two equal candidates,
    # so the loss is at least log 2; the real hard negatives cost less. Either way the column counts.
    assert loss_value(rows["positive"]) > math.log(2)
    assert loss_value(rows["positive"]) > loss_value(rows["negative"]) + 0.1


@pytest.fixture(scope="module")
def base_model():
    from sentence_transformers import SentenceTransformer

    from cachetune.packaged import minilm

    return SentenceTransformer(str(minilm()))


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss_gives_a_finite_value_and_a_gradient_on_a_real_batch(loss, base_model, conala_triplets, conala_prepared):
    """Each loss as training builds it, on one batch laid out as its dataset is: a forward and a backward step."""
    reads = LOSSES[loss].reads
    file = read_training_file(conala_prepared / "pairs.train.jsonl" if "triplets" not in reads else conala_triplets)
    dataset = to_dataset(file, labelled_texts=loss == "hard-triplet").select(range(16))
    options = settings(Path("unused"), Path("unused"), loss=(loss,), mini_batch_size=4)
    module = LOSSES[loss].build(base_model, options, loss_options(loss, options), lambda: base_model)
    features = [base_model.preprocess(dataset[column]) for column in dataset.column_names if column != "label"]
    labels = torch.tensor(dataset["label"]) if "label" in dataset.column_names else None
    base_model.zero_grad()
    value = module(features, labels)
    value.backward()
    gradients = [p.grad.abs().sum() for p in base_model.parameters() if p.grad is not None]
    assert torch.isfinite(value) and gradients and float(sum(gradients)) > 0


@pytest.mark.parametrize("loss", ["mnr", "cached-mnr", "gist", "hard-triplet"])
def test_each_way_of_training_runs(loss, conala_triplets, tmp_path):
    """One Trainer run per way the trainer runs a loss: plain ranking, cached gradients, a guide model, batches grouped
    by intent label (pair losses train in test_mixed_triplets_and_pairs_train_with_a_loss_each)."""
    # checkpoint_steps 1: a loss is logged at each step
    info = train(settings(tmp_path / loss, conala_triplets, loss=(loss,), max_steps=2, batch_size=8, checkpoint_steps=1))
    assert info.steps == 2 and [point.step for point in info.loss_curve] == [1, 2]
    assert info.train_data[0].loss == loss
    assert all(point.loss == point.loss for point in info.loss_curve)  # no NaN


def test_mixed_triplets_and_pairs_train_with_a_loss_each(conala_triplets, conala_prepared, tmp_path):
    triplets, pairs = tmp_path / "data" / "triplets.jsonl", tmp_path / "data" / "pairs.jsonl"
    write_jsonl(triplets, read_records(conala_triplets, Triplet)[:96])  # an epoch of each file in a few steps
    write_jsonl(pairs, read_records(conala_prepared / "pairs.train.jsonl", Pair)[:192])
    info = train(settings(tmp_path / "mixed", triplets, pairs, loss=("mnr", "online-contrastive"), batch_size=32, tensorboard=True))
    assert [(d.kind, d.loss) for d in info.train_data] == [("triplets", "mnr"), ("pairs", "online-contrastive")]
    # each file by its folder and name: no machine path, and two runs' same-named files stay apart
    assert [d.file for d in info.train_data] == ["data/triplets.jsonl", "data/pairs.jsonl"]
    rows = [d.rows for d in info.train_data]
    assert info.steps >= sum(-(-n // 32) for n in rows) - 1
    assert list((tmp_path / "mixed" / "tensorboard").rglob("events.out.tfevents.*"))


def test_full_fine_tuning_trains_every_weight(conala_triplets, tmp_path):
    info = train(settings(tmp_path / "full", conala_triplets, lora=False, max_steps=1))
    assert info.adapter.type == "full" and info.adapter.rank is None
    assert info.trainable_parameters == info.total_parameters > 20_000_000
    assert (tmp_path / "full" / "model.safetensors").is_file()


@pytest.fixture
def no_model_loading(monkeypatch):
    import sentence_transformers

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", refuse)


def test_bad_input_fails_before_any_model_is_loaded(no_model_loading, conala_triplets, conala_prepared, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(InputError, match="empty file"):
        train(settings(tmp_path / "o", empty))

    missing = tmp_path / "missing.jsonl"
    write_jsonl(missing, [{"query1": "how to sort a list", "query2": "sort list", "domain": "programming", "source": "me"}])
    with pytest.raises(InputError, match=rf"{missing}:1: missing field 'label'"):
        train(settings(tmp_path / "o", missing))

    with pytest.raises(
        InputError,
        match="holds pairs, and no --loss given \\(mnr\\) learns from pairs; add one of: hard-triplet, cosine, online-contrastive",
    ):
        train(settings(tmp_path / "o", conala_prepared / "pairs.train.jsonl"))

    with pytest.raises(InputError, match=r"--loss\[0\]: Input should be 'mnr', 'cached-mnr'"):
        build(TrainSettings, {"train_data": (conala_triplets,), "output": tmp_path / "o", "loss": ("margin-mse",)}, flag)

    with pytest.raises(InputError, match="--loss online-contrastive: no training file"):
        train(settings(tmp_path / "o", conala_triplets, loss=("mnr", "online-contrastive")))

    positives = tmp_path / "positives.jsonl"
    write_jsonl(positives, [p for p in read_records(conala_prepared / "pairs.val.jsonl", Pair) if p.label == 1])
    with pytest.raises(InputError, match="validation needs pairs with label 1 and label 0"):
        train(settings(tmp_path / "o", conala_triplets, val_data=positives))

    with pytest.raises(InputError, match=rf"{empty}: empty file"):
        train(settings(tmp_path / "o", conala_triplets, preserve_data=(empty,)))

    with pytest.raises(ModelError, match="no such folder"):
        train(settings(tmp_path / "o", conala_triplets, base_model=str(tmp_path / "no-model")))
    assert not (tmp_path / "o").exists()


def test_run_killed_mid_epoch_resumes_to_the_same_number_of_steps(conala_triplets, tmp_path):
    rows = [json.loads(line) for line in conala_triplets.read_text().splitlines()[:120]]
    data = tmp_path / "triplets.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    args = ["train", "--train-data", str(data), "--batch-size", "8", "--lr", "2e-4", "--max-seq-length", "32", "--checkpoint-steps", "3"]

    output = tmp_path / "killed"
    process = run_cli(*args, "--output", str(output))
    deadline = time.time() + 240
    while not list((output / "checkpoints").glob("checkpoint-6")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None, process.stdout.read()
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (output / "training_info.json").exists()

    refused = run_cli(*args, "--output", str(output))
    assert refused.wait() == 1 and "pass --resume" in refused.stdout.read()

    resumed = run_cli(*args, "--output", str(output), "--resume")
    log = resumed.stdout.read()
    assert resumed.wait() == 0, log
    info = json.loads((output / "training_info.json").read_text())
    assert info["resumed_from_step"] in (3, 6)  # 6 if its checkpoint was complete when killed
    assert info["steps"] == math.ceil(len(rows) / 8) == 15  # one epoch of 120 rows in batches of 8, as if never killed


def test_ddp_on_two_cpu_processes(conala_triplets, tmp_path):
    output = tmp_path / "ddp"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        "-m",
        "cachetune",
        "train",
        "--train-data",
        str(conala_triplets),
        "--output",
        str(output),
        "--batch-size",
        "8",
        "--max-steps",
        "3",
        "--max-seq-length",
        "32",
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    info = json.loads((output / "training_info.json").read_text())
    assert info["world_size"] == 2 and info["steps"] == 3
    assert (output / "adapter_model.safetensors").is_file()


def test_general_guard_scales_the_update_back_until_general_quality_holds(conala_triplets, conala_prepared, general_pairs, tmp_path):
    from cachetune.models import load_model
    from cachetune.train.validation import GeneralValidation

    output = tmp_path / "guarded"
    values = {"lora": False, "lr": 3e-4, "max_steps": 6, "batch_size": 16, "general_tolerance": 0.002}
    info = train(settings(output, conala_triplets, val_data=conala_prepared / "pairs.val.jsonl", general_data=general_pairs, **values))
    guard = info.general_guard.model_dump()
    by_scale = {c["scale"]: c for c in guard["candidates"]}
    assert set(by_scale) == {1.0, 0.8, 0.6, 0.4, 0.2, 0.0} and by_scale[0.0]["general"] == guard["base"]  # scale 0 is the base
    chosen = by_scale[guard["chosen_scale"]]
    assert not by_scale[1.0]["passes"] and guard["chosen_scale"] < 1.0  # this lr costs general quality: pulled back
    assert chosen["passes"] and all(
        chosen["general"][name] >= guard["base"][name] - 0.002 for name in guard["base"]
    )  # within tolerance on every general set
    better = [c for c in guard["candidates"] if c["val_replay_auc"] > chosen["val_replay_auc"]]
    assert all(not c["passes"] for c in better)  # anything better on validation lost too much general quality
    saved = GeneralValidation(general_pairs)(load_model(str(output)))
    assert all(abs(saved[name] - chosen["general"][name]) < 1e-4 for name in saved)  # the saved model is the chosen scale


def test_preserve_data_holds_general_texts_near_the_base_model(conala_prepared, general_pairs, tmp_path):
    import numpy as np

    from cachetune.records import record_texts

    stsb, mrpc = general_pairs
    pairs = tmp_path / "pairs.jsonl"
    write_jsonl(pairs, read_records(conala_prepared / "pairs.train.jsonl", Pair)[:192])
    held_out = record_texts(mrpc)[:200]  # general texts never preserved

    def drift(**extra) -> tuple[dict, list[float]]:
        output = tmp_path / f"model-{len(extra)}"
        values = {"loss": ("online-contrastive",), "lora": False, "lr": 3e-4, "epochs": 1, "batch_size": 32, "seed": 3}
        info = train(settings(output, pairs, **values, **extra))
        base, tuned = load_model(None), load_model(str(output))
        cosines = []
        for texts in (record_texts(stsb)[:200], held_out):
            a, b = (m.encode(texts, normalize_embeddings=True, convert_to_numpy=True) for m in (base, tuned))
            cosines.append(1 - float(np.mean(np.sum(a * b, axis=1))))
        return info, cosines

    plain_info, plain = drift()
    kept_info, kept = drift(preserve_data=(stsb,), preserve_weight=4.0)
    assert plain_info.preserve_texts == 0 and 0 < kept_info.preserve_texts <= plain_info.train_data[0].rows
    assert kept_info.hyperparameters["preserve_data"] == ["stsb/pairs.test.jsonl"]
    # the preserved texts, and general texts the loss never saw, moved less from the base model's vectors
    assert kept[0] < 0.5 * plain[0] and kept[1] < 0.5 * plain[1]
