"""`cachetune pipeline`: all stages in one run folder; unchanged stages skipped, interrupted ones resumed."""

import json
import shutil

import pytest
import yaml

from cachetune.errors import InputError
from cachetune.pipeline import Run, run_pipeline
from cachetune.records import Triplet, read_records
from cachetune.synth.journal import progress_path

pytestmark = [pytest.mark.training, pytest.mark.llm]  # every stage, generation and training included


def write_config(folder, shared_data, **train_overrides) -> str:
    config = {
        "name": "tiny",
        "run_dir": "run",
        "data_root": str(shared_data),
        "prepare": [
            {"name": "conala", "source": "conala", "input": "programming/conala-train.json", "max_queries": 300, "val": 0.2, "test": 0.3}
        ],
        "generate": {"input": "prepare-conala/queries.train.jsonl", "max_queries": 4, "batch_size": 4},
        "mine": [
            {
                "name": "conala",
                "input": "prepare-conala/pairs.train.jsonl",
                "corpus": "prepare-conala/queries.train.jsonl",
                "num_negatives": 1,
                "range_min": 2,
                "range_max": 20,
            }
        ],
        "train": {
            "train_data": ["mine-conala/triplets.jsonl", "generate/triplets.jsonl", "prepare-conala/pairs.train.jsonl"],
            "loss": ["mnr", "online-contrastive"],
            "val_data": "prepare-conala/pairs.val.jsonl",
            "max_steps": 3,
            "batch_size": 16,
            "max_seq_length": 48,
            **train_overrides,
        },
        "evaluate": {
            "test_data": ["prepare-conala/pairs.test.jsonl"],
            "val_data": "prepare-conala/pairs.val.jsonl",
            "bootstrap": 50,
            "speed": False,
        },
    }
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def tiny_run(shared_data, tmp_path_factory):
    """The tiny pipeline run once for the module: its folder (the config and `run/`), and what it told and returned."""
    folder = tmp_path_factory.mktemp("tiny")
    told = []
    run, report = run_pipeline(write_config(folder, shared_data), on_stage=lambda name, what: told.append((name, what)))
    return folder, run, report, told


def copy_of(tiny_run, tmp_path):
    """A copy of the tiny run's folder to change: its config, whose run folder is `run/` beside it."""
    shutil.copytree(tiny_run[0], tmp_path, dirs_exist_ok=True)
    return tmp_path / "tiny.yaml"


def test_pipeline_runs_skips_and_reruns_what_changed(tiny_run, shared_data, tmp_path):
    _, run, report, told = tiny_run
    config = copy_of(tiny_run, tmp_path)
    assert [outcome for _, outcome in run.log] == ["ran"] * 5
    assert [what for _, what in told[::2]] == ["started"] * 5 and all(what.startswith("ran (") for _, what in told[1::2])
    assert run.folder == (tiny_run[0] / "run").resolve()
    assert (run.folder / "train" / "model" / "adapter_model.safetensors").is_file()
    assert report.pairs[0].tuned.ap > 0.5 and (run.folder / "evaluate" / "report.md").is_file()
    info = json.loads((run.folder / "train" / "model" / "training_info.json").read_text())
    assert info["command"] == ["cachetune", "pipeline", "--config", str(tiny_run[0] / "tiny.yaml")]
    assert report.cache_config == str(run.folder / "evaluate" / "cache.yaml") and (run.folder / "evaluate" / "cache.yaml").is_file()

    again, _ = run_pipeline(config)
    assert [outcome for _, outcome in again.log] == ["up to date, skipped"] * 5

    changed, _ = run_pipeline(write_config(tmp_path, shared_data, max_steps=4))
    assert dict(changed.log) == {
        "prepare-conala": "up to date, skipped",
        "generate": "up to date, skipped",
        "mine-conala": "up to date, skipped",
        "train": "ran",
        "evaluate": "ran",
    }


def test_interrupted_generation_resumes_without_duplicates(tiny_run, tmp_path):
    config = copy_of(tiny_run, tmp_path)
    stages = ("prepare", "generate")  # the later stages only read what generate wrote
    folder = tmp_path / "run" / "generate"
    output = folder / "triplets.jsonl"
    # What a kill during the last query leaves: its commit missing, the stage not marked done.
    stage = json.loads((folder / "stage.json").read_text())
    (folder / "stage.json").unlink()
    (folder / "stage.started.json").write_text(json.dumps({"fingerprint": stage["fingerprint"]}))
    log = progress_path(output).read_text().splitlines()
    progress_path(output).write_text("\n".join(log[:-1]) + "\n")
    resumed, _ = run_pipeline(config, stages=stages)
    assert dict(resumed.log)["generate"] == "resumed and finished"
    assert len(progress_path(output).read_text().splitlines()) == 4
    rows = read_records(output, Triplet)
    assert len({(t.anchor, t.positive, t.hard_negative) for t in rows}) == len(rows)


def test_a_reference_to_a_file_no_stage_writes_is_refused_before_any_stage_runs(shared_data, tmp_path):
    config = write_config(tmp_path, shared_data, train_data=["mine-conala/triplet.jsonl"])
    with pytest.raises(
        InputError,
        match=r"tiny.yaml: train.train_data: 'mine-conala/triplet.jsonl' is not a file an earlier stage writes \(mine-conala/ holds triplets.jsonl\)",
    ):
        run_pipeline(config)
    elsewhere = tmp_path / "labelled.jsonl"  # a file outside the run folder, by its absolute path
    with pytest.raises(InputError, match=rf"tiny.yaml: train.train_data: {elsewhere}: no such file"):
        run_pipeline(write_config(tmp_path, shared_data, train_data=[str(elsewhere)]))
    assert not (tmp_path / "run").exists()
    elsewhere.write_text("")
    assert Run(write_config(tmp_path, shared_data, train_data=[str(elsewhere)])).stages  # once it is there, it is taken


def test_a_file_missing_from_the_run_folder_is_an_error_when_its_reader_starts(shared_data, tmp_path):
    config = write_config(tmp_path, shared_data, train_data=["prepare-conala/pairs.train.jsonl"])
    run, _ = run_pipeline(config, stages=("prepare",))
    (run.folder / "prepare-conala" / "pairs.train.jsonl").unlink()
    with pytest.raises(InputError, match="'prepare-conala/pairs.train.jsonl' is not a file written by an earlier stage"):
        run_pipeline(config, stages=("prepare", "train"))
