"""Every stage setting is declared once: each field of each stage's model can be set from the command line and
from a pipeline config (unless the pipeline fills it), and its default is the same on both."""

import typing
from pathlib import Path

import pytest
import typer
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from typer.testing import CliRunner

from cachetune.cli import STAGE_SETTINGS, app, flag, stage_command
from cachetune.data.settings import PrepareSettings
from cachetune.errors import InputError
from cachetune.evaluate.settings import EvaluateSettings
from cachetune.export.settings import ExportSettings
from cachetune.pipeline import Run
from cachetune.synth.settings import GenerateSettings, JudgeSettings, MineSettings
from cachetune.train.losses import LOSSES
from cachetune.train.settings import LossName, TrainSettings

STAGES = {
    "prepare": PrepareSettings,
    "generate": GenerateSettings,
    "mine": MineSettings,
    "judge": JudgeSettings,
    "train": TrainSettings,
    "export": ExportSettings,
    "evaluate": EvaluateSettings,
}


def bounds(field: FieldInfo) -> dict:
    found = {}
    for rule in field.metadata:
        for name in ("gt", "ge", "lt", "le"):
            if getattr(rule, name, None) is not None:
                found[name] = getattr(rule, name)
    return found


def other_value(name: str, field: FieldInfo):
    """A valid value of the field's type that is not its default."""
    annotation = field.annotation
    default = None if field.is_required() else field.default
    if typing.get_origin(annotation) is tuple:
        item = typing.get_args(annotation)[0]
        if item is Path:
            return (Path(f"{name}-1.jsonl"), Path(f"{name}-2.jsonl"))
        if item is float:
            return (0.5, 0.75)
        if typing.get_origin(item) is typing.Literal:
            return (typing.get_args(item)[-1],)
        return ("out_proj", "query")
    if isinstance(annotation, typing.types.UnionType):
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    if annotation is bool:
        return not default
    if typing.get_origin(annotation) is typing.Literal:
        return next(choice for choice in typing.get_args(annotation) if choice != default)
    limits = bounds(field)
    if annotation is int:
        return (default or limits.get("ge", limits.get("gt", 0))) + 1
    if annotation is float:
        top = limits.get("lt", limits.get("le", 1.0))
        value = (default or top) / 2
        return value if value != default else value / 2
    if annotation is Path:
        return Path(f"{name}.jsonl")
    return f"{name}-value"


def cli_args(values: dict) -> list[str]:
    args = []
    for name, value in values.items():
        if isinstance(value, bool):
            args.append(flag(name) if value else f"--no-{flag(name)[2:]}")
        elif isinstance(value, tuple):
            for item in value:
                args += [flag(name), str(item)]
        else:
            args += [flag(name), str(value)]
    return args


def required(model: type[BaseModel]) -> dict:
    return {name: other_value(name, field) for name, field in model.model_fields.items() if field.is_required()}


@pytest.mark.parametrize("name", list(STAGES))
def test_every_field_is_an_option_of_its_command_with_the_same_default(name):
    model = STAGES[name]
    assert STAGE_SETTINGS[name] is model
    command = typer.main.get_command(app).commands[name]
    options = {param.name: param for param in command.params}
    assert set(options) == set(model.model_fields)
    for field_name, field in model.model_fields.items():
        if not field.is_required():
            default = field.default
            assert options[field_name].default == (list(default) if isinstance(default, tuple) else default), field_name

    received = []
    probe = typer.Typer()
    stage_command(model, name, on=probe)(received.append)
    stage_command(model, "unused", on=probe)(received.append)  # two commands: Typer then expects the name
    values = {**required(model), **{n: other_value(n, f) for n, f in model.model_fields.items() if not f.is_required()}}
    if name == "export":
        values.update(merge=True, onnx=False, int8=False)  # at least one to export
    result = CliRunner().invoke(probe, [name, *cli_args(values)])
    assert result.exit_code == 0, result.output
    assert received[-1] == model(**values)
    # what a command needs beside its required fields: export something; mine from a corpus (its default)
    needed = {"export": {"merge": True}, "mine": {"corpus": (Path("corpus.jsonl"),)}}.get(name, {})
    result = CliRunner().invoke(probe, [name, *cli_args({**required(model), **needed})])
    assert result.exit_code == 0, result.output
    assert received[-1] == model(**required(model), **needed)


def pipeline_config(tmp_path: Path, steps: dict) -> Path:
    config = {"name": "probe", "run_dir": str(tmp_path / "run"), "data_root": str(tmp_path), **steps}
    path = tmp_path / "probe.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def minimal_steps() -> dict:
    return {
        "prepare": [
            {"name": "first", "source": "conala", "input": "conala.json"},
            {"name": "a", "source": "conala", "input": "conala.json"},
        ],
        "generate": {"input": "prepare-a/queries.train.jsonl"},
        "mine": [{"name": "a", "input": "prepare-a/pairs.train.jsonl", "corpus": "prepare-a/queries.train.jsonl"}],
        "judge": [{"name": "a", "input": "mine-a/triplets.jsonl"}],
        "train": {"train_data": ["prepare-a/pairs.train.jsonl"]},
        "evaluate": {"test_data": ["prepare-a/pairs.test.jsonl"]},
    }


PIPELINE_STAGES = {
    "prepare": PrepareSettings,
    "generate": GenerateSettings,
    "mine": MineSettings,
    "judge": JudgeSettings,
    "train": TrainSettings,
    "evaluate": EvaluateSettings,
}


def stage_settings(run: Run, kind: str):
    """The settings of the kind's step named `a` (or its only step)."""
    return dict(run.stages)[kind if kind in ("generate", "train", "evaluate") else f"{kind}-a"]


EARLIER_FILES = (Path("prepare-first/queries.val.jsonl"), Path("prepare-first/pairs.test.jsonl"))  # before every probed step


@pytest.mark.parametrize("kind", list(PIPELINE_STAGES))
def test_every_field_the_pipeline_does_not_fill_is_a_step_setting_with_the_same_default(kind, tmp_path):
    model = PIPELINE_STAGES[kind]
    steps = minimal_steps()
    step = steps[kind][-1] if isinstance(steps[kind], list) else steps[kind]
    defaults = stage_settings(Run(pipeline_config(tmp_path, steps)), kind)
    for name, field in model.model_fields.items():
        if name not in model.PIPELINE_FILLS and not field.is_required() and name not in step:
            assert getattr(defaults, name) == field.default, name

    changed = {name: other_value(name, field) for name, field in model.model_fields.items() if name not in model.PIPELINE_FILLS}
    if kind == "prepare":
        changed.update(source="jsonl", input="logs.jsonl")  # a real source, relative to data_root
    for name in model.RUN_INPUTS:  # files an earlier stage writes
        changed[name] = EARLIER_FILES if isinstance(changed[name], tuple) else EARLIER_FILES[0]
    step.update(
        {
            name: [str(v) for v in value] if isinstance(value, tuple) else str(value) if isinstance(value, Path) else value
            for name, value in changed.items()
        }
    )
    settings = stage_settings(Run(pipeline_config(tmp_path, steps)), kind)
    for name, value in changed.items():
        expected = str(tmp_path / value) if (kind, name) == ("prepare", "input") else value
        assert getattr(settings, name) == expected, name


@pytest.mark.parametrize("kind", ["train", "generate", "evaluate"])
def test_fields_the_pipeline_fills_are_refused_in_its_config(kind, tmp_path):
    model = PIPELINE_STAGES[kind]
    steps = minimal_steps()
    owned = sorted(model.PIPELINE_FILLS)[0]
    steps[kind][owned] = "somewhere"
    with pytest.raises(InputError, match=rf"{kind}.{owned}: set by the pipeline, leave it out"):
        Run(pipeline_config(tmp_path, steps))


def test_a_wrong_step_setting_names_its_file_and_field(tmp_path):
    steps = minimal_steps()
    steps["train"]["batch_size"] = 1
    with pytest.raises(InputError, match=r"probe.yaml: train.batch_size: Input should be greater than or equal to 2"):
        Run(pipeline_config(tmp_path, steps))
    steps = minimal_steps()
    steps["train"]["mining"] = "semi-hard"  # once refused: the pipeline had no such field
    assert stage_settings(Run(pipeline_config(tmp_path, steps)), "train").mining == "semi-hard"


def test_bad_flags_end_in_one_line_that_names_the_flag(tmp_path):
    result = CliRunner().invoke(app, ["train", "--train-data", "t.jsonl", "--output", str(tmp_path), "--batch-size", "1"])
    assert result.exit_code == 1 and "--batch-size: Input should be greater than or equal to 2" in result.output
    result = CliRunner().invoke(app, ["train", "--train-data", "t.jsonl", "--output", str(tmp_path), "--loss", "margin-mse"])
    assert result.exit_code == 1 and "--loss[0]: Input should be 'mnr'" in result.output


def test_loss_names_are_declared_once():
    assert set(LOSSES) == set(typing.get_args(LossName))
