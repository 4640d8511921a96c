"""`cachetune pipeline --config configs/NAME.yaml`: every stage from real queries to a report, in one run folder.

    RUN/prepare-NAME/   queries and pairs, one folder per prepare step
    RUN/generate/       LLM triplets, or pairs with negatives: 0 (optional)
    RUN/mine-NAME/      mined triplets, one folder per mine step (optional)
    RUN/train/model/    the adapter
    RUN/evaluate/       report.json, report.md, plots, cache.yaml (the tuned model at its operating threshold)

A step in the YAML holds its stage's settings under the same names and defaults as the command's options
(`cachetune train --help`), minus those the pipeline fills itself (output folders, resume, the run's
`base_model`, the model to evaluate). Settings that name input files refer to files an earlier stage writes,
by their path inside the run folder (`prepare-conala/pairs.train.jsonl`); a name no earlier stage writes is refused
when the config is loaded. Each stage records a fingerprint of its settings and of its input files' bytes: a stage
whose fingerprint did not change is skipped; one that was interrupted resumes (generate from its progress log,
train from its last checkpoint); one whose settings or inputs changed starts again from nothing. Relative paths are
relative to the config file; `$CACHETUNE_DATA_ROOT` overrides `data_root`.
"""

import hashlib
import importlib
import json
import os
import shutil
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from cachetune import __version__
from cachetune.data.settings import SPLITS, PrepareSettings, split_file
from cachetune.errors import InputError
from cachetune.evaluate.result import EvaluationReport
from cachetune.evaluate.settings import EvaluateSettings
from cachetune.inputs import Strict, load_yaml
from cachetune.models import files_sha256
from cachetune.records import write_json
from cachetune.settings import StageSettings, build
from cachetune.synth.settings import GenerateSettings, JudgeSettings, MineSettings
from cachetune.train.settings import TrainSettings

Step = dict[str, Any]  # a stage's settings as written in the YAML, checked against the stage's model
STAGES = ("prepare", "generate", "mine", "judge", "train", "evaluate")


class PrepareFallback(Strict):
    """Where a prepare step reads the same data from when its `input` is not on this machine (the Hugging Face Hub)."""

    source: str = "hf"
    input: str
    text_field: str | None = None


class PipelineConfig(Strict):
    """The pipeline's YAML. Steps are mappings of their stage's settings; `prepare`, `mine` and `judge` steps also
    have a `name` (their folder is prepare-NAME, ...) and a prepare step may have a `fallback`."""

    name: str
    run_dir: str | None = None  # default: runs/NAME beside the current folder
    data_root: str = "../../shared/data"
    base_model: str | None = None  # the base of mining and training
    prepare: list[Step] = Field(min_length=1)
    generate: Step | None = None
    mine: list[Step] = []
    judge: list[Step] = []
    train: Step
    evaluate: Step


class Run:
    """One pipeline run: its folder, its stages' settings (checked when the config is loaded) and a log."""

    def __init__(self, config_path: Path, run_dir: Path | None = None) -> None:
        self.config_path = Path(config_path)
        self.config = load_yaml(self.config_path, PipelineConfig)
        here = self.config_path.resolve().parent
        self.data_root = Path(os.environ.get("CACHETUNE_DATA_ROOT") or here / self.config.data_root).resolve()
        default_folder = here / self.config.run_dir if self.config.run_dir else Path("runs") / self.config.name
        self.folder = Path(run_dir or default_folder).resolve()
        self.log: list[tuple[str, str]] = []
        self.stages = list(self._plan())
        self._check_references()

    def _plan(self):
        """(folder name, settings, fallback) per stage, in order; every step checked against its stage's model."""
        config = self.config
        for name, step, where in self._named(config.prepare, "prepare"):
            fallback = step.pop("fallback", None)
            folder = f"prepare-{name}"
            local = self.data_root / str(step.get("input", ""))
            # relative to data_root; for source hf, only when that file is there (else it is a hub id)
            if step.get("input") and not Path(step["input"]).is_absolute() and (step.get("source") != "hf" or local.exists()):
                step["input"] = str(local)
            settings = self._settings(PrepareSettings, step, where, output=self.folder / folder)
            if fallback is not None and not Path(settings.input).exists():
                fallback = self._check(PrepareFallback, fallback, f"{where}.fallback")
                settings = self._settings(
                    PrepareSettings, {**step, **fallback.model_dump(exclude_none=True)}, where, output=self.folder / folder
                )
            yield folder, settings
        if config.generate is not None:
            negatives = config.generate.get("negatives", GenerateSettings.model_fields["negatives"].default)
            output = self.folder / "generate" / ("triplets.jsonl" if negatives else "pairs.jsonl")
            yield "generate", self._settings(GenerateSettings, config.generate, "generate", output=output, resume=False)
        for name, step, where in self._named(config.mine, "mine"):
            output = self.folder / f"mine-{name}" / "triplets.jsonl"
            yield f"mine-{name}", self._settings(MineSettings, step, where, output=output, base_model=config.base_model)
        for name, step, where in self._named(config.judge, "judge"):
            yield (
                f"judge-{name}",
                self._settings(JudgeSettings, step, where, output=self.folder / f"judge-{name}" / "judged.jsonl", resume=False),
            )
        model = self.folder / "train" / "model"
        yield "train", self._settings(TrainSettings, config.train, "train", output=model, resume=False, base_model=config.base_model)
        evaluate = self.folder / "evaluate"
        fills = {
            "output": evaluate,
            "model": str(model),
            "write_cache_config": evaluate / "cache.yaml" if config.evaluate.get("val_data") else None,
        }
        yield "evaluate", self._settings(EvaluateSettings, config.evaluate, "evaluate", **fills)

    def _check_references(self) -> None:
        """Every run-folder reference names a file an earlier stage writes, and every absolute path a file that is
        there: a typo fails before hours of generation."""
        written: dict[str, set[str]] = {}  # an earlier stage's folder: the files it writes there
        for name, settings in self.stages:
            for field in sorted(settings.RUN_INPUTS):
                for reference in _references(settings, field):
                    if Path(reference).is_absolute():
                        if not Path(reference).is_file():
                            raise InputError(f"{self.config_path}: {name}.{field}: {reference}: no such file")
                        continue
                    folder, _, file = Path(reference).as_posix().partition("/")
                    if file not in written.get(folder, ()):
                        hint = (
                            f"{folder}/ holds {', '.join(sorted(written[folder]))}"
                            if folder in written
                            else f"earlier stages: {', '.join(written)}"
                        )
                        raise InputError(
                            f"{self.config_path}: {name}.{field}: '{reference}' is not a file an earlier stage writes ({hint})"
                        )
            output = Path(settings.output).relative_to(self.folder)
            if isinstance(settings, PrepareSettings):
                written[output.as_posix()] = {split_file(records, split) for records in ("queries", "pairs") for split in SPLITS}
            else:
                written.setdefault(output.parts[0], set()).add(Path(*output.parts[1:]).as_posix())

    def _named(self, steps: list[Step], stage: str):
        """(name, the step without its name, where it is in the config) for a list of named steps."""
        for number, step in enumerate(steps):
            step = dict(step) if isinstance(step, dict) else step
            name = step.pop("name", None) if isinstance(step, dict) else None
            if not name:
                raise InputError(f"{self.config_path}: {stage}[{number}]: a {stage} step needs a name")
            yield name, step, f"{stage}[{number}]"

    def _check(self, schema: type[BaseModel], values: Any, where: str, **filled):
        if not isinstance(values, dict):
            raise InputError(f"{self.config_path}: {where}: expected a mapping of settings")
        return build(schema, {**values, **filled}, lambda field: f"{self.config_path}: {where}.{field}")

    def _settings(self, stage: type[StageSettings], step: Any, where: str, **filled) -> StageSettings:
        """The stage's settings from its step; the fields the pipeline fills are refused in the YAML."""
        for field in sorted(stage.PIPELINE_FILLS & (step.keys() if isinstance(step, dict) else set())):
            raise InputError(f"{self.config_path}: {where}.{field}: set by the pipeline, leave it out")
        return self._check(stage, step, where, **filled)

    def input_files(self, settings: StageSettings) -> list[Path]:
        """The files a stage reads that an earlier stage wrote, checked to be there."""
        files = []
        for field in sorted(settings.RUN_INPUTS):
            for reference in _references(settings, field):
                path = self.folder / reference
                if not path.is_file():
                    raise InputError(f"pipeline: '{reference}' is not a file written by an earlier stage (looked for {path})")
                files.append(path)
        return files

    def resolved(self, settings: StageSettings, resume: bool) -> StageSettings:
        """`settings` with run-folder references made paths, and `resume` where the stage has it."""
        update = {}
        for field in settings.RUN_INPUTS:
            value = getattr(settings, field)
            if isinstance(value, tuple):
                update[field] = tuple(self.folder / reference for reference in value)
            elif value is not None:
                update[field] = self.folder / value
        if "resume" in type(settings).model_fields:
            update["resume"] = resume
        return settings.model_copy(update=update)

    def stage(self, name: str, settings: StageSettings, action: Callable[[StageSettings], object]) -> None:
        """Run `action(settings)` unless the stage's fingerprint is unchanged since it last finished."""
        folder = self.folder / name
        inputs = self.input_files(settings)
        record = {key: value for key, value in settings.record().items() if key not in settings.PIPELINE_FILLS}
        if isinstance(settings, PrepareSettings) and Path(settings.input).is_relative_to(self.data_root):
            record["input"] = str(Path(settings.input).relative_to(self.data_root))  # the same data anywhere
            inputs += [Path(settings.input)] if Path(settings.input).is_file() else []
        if isinstance(settings, EvaluateSettings):  # the model it evaluates is an input too
            inputs += sorted(Path(settings.model).glob("*.safetensors"))
        fingerprint = _fingerprint(record, inputs)
        done, started = folder / "stage.json", folder / "stage.started.json"
        if done.is_file() and json.loads(done.read_text()).get("fingerprint") == fingerprint:
            self.log.append((name, "up to date, skipped"))
            return
        resume = started.is_file() and json.loads(started.read_text()).get("fingerprint") == fingerprint and not done.is_file()
        if not resume and folder.exists():
            shutil.rmtree(folder)  # settings or inputs changed: nothing in it is valid any more
        folder.mkdir(parents=True, exist_ok=True)
        write_json(started, {"fingerprint": fingerprint, "settings": record})
        action(self.resolved(settings, resume))
        write_json(done, {"fingerprint": fingerprint, "settings": record, "inputs": [str(p) for p in inputs]})
        started.unlink()
        self.log.append((name, "resumed and finished" if resume else "ran"))


def _references(settings: StageSettings, field: str) -> list[str]:
    """The run-folder references in one of a stage's input fields (a path, a tuple of paths or None)."""
    value = getattr(settings, field)
    return [str(reference) for reference in (value if isinstance(value, tuple) else [value] if value is not None else [])]


def _fingerprint(settings: dict, inputs: list[Path]) -> str:
    digest = hashlib.sha256(json.dumps({"settings": settings, "version": __version__}, sort_keys=True, default=str).encode())
    for path in inputs:
        digest.update(files_sha256([path]).encode())
    return digest.hexdigest()


def run_pipeline(
    config_path: Path, run_dir: Path | None = None, stages: Collection[str] = STAGES, on_stage: Callable[[str, str], None] | None = None
) -> tuple[Run, dict | None]:
    """Run (or finish) the stages of a pipeline config.

    Args:
        config_path: the pipeline's YAML.
        run_dir: the run folder; default: the config's `run_dir`, else runs/NAME.
        stages: which kinds of stage to run, in pipeline order (e.g. `("prepare",)` for the data evaluation reads).
        on_stage: called with (stage, "started") before each stage and (stage, its outcome and seconds) after it.

    Returns:
        The run (folder, stage log) and the evaluation report (None when evaluate was not run).

    Raises:
        InputError: a malformed config or step, or a reference to a file no earlier stage writes (checked before any
            stage runs), or an input file missing from the run folder when its stage starts.
        ModelError, BackendError: from the stages.
    """
    run = Run(config_path, run_dir)
    command = ["cachetune", "pipeline", "--config", str(config_path)]
    for name, settings in run.stages:
        if name.split("-", 1)[0] in stages:
            started = time.time()
            if on_stage:
                on_stage(name, "started")
            run.stage(name, settings, _action(settings, command))
            if on_stage:
                on_stage(name, f"{run.log[-1][1]} ({time.time() - started:.0f} s)")
    return run, EvaluationReport.read(run.folder / "evaluate" / "report.json") if "evaluate" in stages else None


# Each stage's function, imported only when one of its steps runs (heavy stage modules: torch, llama_cpp)
STAGE_FUNCTIONS = {
    PrepareSettings: "cachetune.data.prepare:prepare",
    GenerateSettings: "cachetune.synth.generate:generate",
    MineSettings: "cachetune.synth.mine:mine",
    JudgeSettings: "cachetune.synth.judge:judge",
    TrainSettings: "cachetune.train.trainer:train",
    EvaluateSettings: "cachetune.evaluate.run:evaluate",
}


def _action(settings: StageSettings, command: list[str]) -> Callable[[StageSettings], object]:
    """The stage function for a stage's settings; training records the command that ran it."""
    module, name = STAGE_FUNCTIONS[type(settings)].split(":")
    function = getattr(importlib.import_module(module), name)
    return (lambda settings: function(settings, command=command)) if isinstance(settings, TrainSettings) else function
