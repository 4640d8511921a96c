"""`cachetune pipeline --config configs/NAME.yaml`: every stage from real queries to a report, in one run folder.

    RUN/prepare-NAME/   queries and pairs, one folder per prepare step
    RUN/generate/       LLM triplets (optional)
    RUN/mine-NAME/      mined triplets, one folder per mine step (optional)
    RUN/train/model/    the adapter
    RUN/evaluate/       report.json, report.md, plots

Later steps name their inputs by path inside the run folder (`prepare-conala/pairs.train.jsonl`).
Each stage records a fingerprint of its settings and of its input files' bytes: a stage whose fingerprint
did not change is skipped; one that was interrupted resumes (generate from its progress log, train from
its last checkpoint); one whose settings or inputs changed starts again from nothing. Relative paths in
the config are relative to the config file; `$CACHETUNE_DATA_ROOT` overrides `data_root`.
"""

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cachetune import __version__
from cachetune.records import RecordError, write_json


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrepareFallback(_Step):
    """Where to read the same data from when `input` is not on this machine (the Hugging Face Hub)."""

    source: str = "hf"
    input: str
    text_field: str | None = None


class PrepareStep(_Step):
    name: str
    source: str
    input: str  # relative to data_root, or absolute, or a hub id for source hf
    fallback: PrepareFallback | None = None
    domain: str | None = None
    min_chars: int = 10
    max_chars: int = 200
    dedupe: Literal["exact", "near"] = "near"
    near_threshold: float = 0.95
    val: float = 0.05
    test: float = 0.1
    seed: int = 42
    max_queries: int | None = None
    text_field: str | None = None
    group_field: str | None = None


class GenerateStep(_Step):
    queries: str
    backend: Literal["llama-cpp", "openai", "vllm"] = "llama-cpp"
    model: str | None = None
    base_url: str | None = None
    max_queries: int | None = None
    batch_size: int = 16
    paraphrases: int = 3
    negatives: int = 2
    domain: str | None = None
    seed: int = 42


class MineStep(_Step):
    name: str
    pairs: str
    corpus: str
    num_negatives: int = 3
    range_min: int = 10
    range_max: int = 50
    margin: float = 0.1


class TrainStep(_Step):
    data: list[str] = Field(min_length=1)
    val: str | None = None
    losses: list[str] = ["mnr"]
    epochs: float = 1.0
    batch_size: int = 64
    lr: float = 2e-4
    temperature: float | None = None
    warmup_ratio: float = 0.1
    margin: float | None = None
    lora: bool = True
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    target_modules: list[str] = ["query", "value"]
    max_seq_length: int = 128
    max_steps: int | None = None
    seed: int = 42


class EvaluateStep(_Step):
    test: list[str] = Field(min_length=1)
    val: str | None = None
    thresholds: list[float] = [0.80, 0.85, 0.90, 0.95]
    target_precision: float = 0.95
    bootstrap: int = 1000
    speed: bool = True


class PipelineConfig(_Step):
    name: str
    run_dir: str | None = None  # default: runs/NAME beside the current folder
    data_root: str = "../../shared/data"
    base_model: str | None = None
    prepare: list[PrepareStep] = Field(min_length=1)
    generate: GenerateStep | None = None
    mine: list[MineStep] = []
    train: TrainStep
    evaluate: EvaluateStep


def load_pipeline_config(path: Path) -> PipelineConfig:
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
        return PipelineConfig.model_validate(document)
    except FileNotFoundError:
        raise RecordError(f"{path}: no such file") from None
    except yaml.YAMLError as error:
        raise RecordError(f"{path}: not valid YAML: {error}") from None
    except ValidationError as error:
        problem = error.errors()[0]
        raise RecordError(f"{path}: {'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}") from None


class Run:
    """Paths and stage bookkeeping for one pipeline run."""

    def __init__(self, config: PipelineConfig, config_path: Path, run_dir: Path | None = None) -> None:
        self.config = config
        self.config_path = str(config_path)
        here = Path(config_path).resolve().parent
        self.data_root = Path(os.environ.get("CACHETUNE_DATA_ROOT") or here / config.data_root).resolve()
        self.folder = Path(run_dir or (here / config.run_dir if config.run_dir else Path("runs") / config.name)).resolve()
        self.log: list[tuple[str, str]] = []

    def path(self, reference: str) -> Path:
        """A file named by a later step: a path inside the run folder that an earlier stage wrote."""
        path = self.folder / reference
        if not path.is_file():
            raise RecordError(f"pipeline: '{reference}' is not a file written by an earlier stage (looked for {path})")
        return path

    def stage(self, name: str, settings: dict, inputs: list[Path], action: Callable[[Path, bool], None]) -> None:
        """Run `action(folder, resume)` unless its fingerprint is unchanged since it last finished."""
        folder = self.folder / name
        fingerprint = _fingerprint(settings, inputs)
        done, started = folder / "stage.json", folder / "stage.started.json"
        if done.is_file() and json.loads(done.read_text()).get("fingerprint") == fingerprint:
            self.log.append((name, "up to date, skipped"))
            return
        resume = started.is_file() and json.loads(started.read_text()).get("fingerprint") == fingerprint and not done.is_file()
        if not resume and folder.exists():
            shutil.rmtree(folder)  # settings or inputs changed: nothing in it is valid any more
        folder.mkdir(parents=True, exist_ok=True)
        write_json(started, {"fingerprint": fingerprint, "settings": settings})
        action(folder, resume)
        write_json(done, {"fingerprint": fingerprint, "settings": settings, "inputs": [str(p) for p in inputs]})
        started.unlink()
        self.log.append((name, "resumed and finished" if resume else "ran"))


def _fingerprint(settings: dict, inputs: list[Path]) -> str:
    from cachetune.models import files_sha256

    digest = hashlib.sha256(json.dumps({"settings": settings, "version": __version__}, sort_keys=True, default=str).encode())
    for path in inputs:
        digest.update(files_sha256([path]).encode())
    return digest.hexdigest()


def run_pipeline(config_path: Path, run_dir: Path | None = None) -> tuple[Run, dict]:
    """Run (or finish) every stage; returns the run and the evaluation report."""
    run = Run(load_pipeline_config(config_path), config_path, run_dir)
    run_data_stages(run)
    _train(run, run.config.train)
    return run, _evaluate(run, run.config.evaluate)


def run_data_stages(run: Run, prepare_only: bool = False) -> None:
    """prepare, generate and mine: everything training reads (with `prepare_only`, what evaluation reads)."""
    for step in run.config.prepare:
        _prepare(run, step)
    if prepare_only:
        return
    if run.config.generate:
        _generate(run, run.config.generate)
    for step in run.config.mine:
        _mine(run, step)


def _prepare(run: Run, step: PrepareStep) -> None:
    from cachetune.data.prepare import PrepareSettings, prepare

    local = Path(step.input) if Path(step.input).is_absolute() else run.data_root / step.input
    source, input_spec, text_field, inputs = step.source, str(local), step.text_field, [local]
    if not local.exists():
        if step.fallback is None:
            raise RecordError(f"pipeline: prepare {step.name}: {local} is not there and the step has no fallback")
        source, input_spec, text_field, inputs = step.fallback.source, step.fallback.input, step.fallback.text_field, []
    fields = step.model_dump(exclude={"name", "source", "input", "fallback", "text_field"})
    settings = {"source": source, "input": input_spec if not inputs else local.name, "text_field": text_field, **fields}

    def action(folder: Path, resume: bool) -> None:
        prepare(PrepareSettings(source=source, input=input_spec, output=folder, text_field=text_field, **fields))

    run.stage(f"prepare-{step.name}", settings, inputs, action)


def _generate(run: Run, step: GenerateStep) -> None:
    from cachetune.synth.generate import GenerateSettings, generate

    queries = run.path(step.queries)

    def action(folder: Path, resume: bool) -> None:
        generate(GenerateSettings(input=queries, output=folder / "triplets.jsonl", resume=resume, **step.model_dump(exclude={"queries"})))

    run.stage("generate", step.model_dump(), [queries], action)


def _mine(run: Run, step: MineStep) -> None:
    from cachetune.synth.mine import MineSettings, mine

    pairs, corpus = run.path(step.pairs), run.path(step.corpus)
    settings = {**step.model_dump(), "base_model": run.config.base_model}

    def action(folder: Path, resume: bool) -> None:
        mine(MineSettings(pairs, corpus, folder / "triplets.jsonl", run.config.base_model, step.num_negatives, step.range_min, step.range_max, step.margin))

    run.stage(f"mine-{step.name}", settings, [pairs, corpus], action)


def _train(run: Run, step: TrainStep) -> None:
    from cachetune.train.trainer import TrainSettings, train

    data = [run.path(reference) for reference in step.data]
    val = run.path(step.val) if step.val else None
    fields = step.model_dump(exclude={"data", "val", "losses", "target_modules"})

    def action(folder: Path, resume: bool) -> None:
        settings = TrainSettings(
            train_data=tuple(data), output=folder / "model", val_data=val, base_model=run.config.base_model, losses=tuple(step.losses),
            target_modules=tuple(step.target_modules), resume=resume, **fields,
        )
        train(settings, command=["cachetune", "pipeline", "--config", run.config_path])

    run.stage("train", {**step.model_dump(), "base_model": run.config.base_model}, data + ([val] if val else []), action)


def _evaluate(run: Run, step: EvaluateStep) -> dict:
    from cachetune.evaluate.run import EvaluateSettings, evaluate

    model = run.folder / "train" / "model"
    tests = [run.path(reference) for reference in step.test]
    val = run.path(step.val) if step.val else None

    def action(folder: Path, resume: bool) -> None:
        evaluate(
            EvaluateSettings(
                model=str(model), test_data=tuple(tests), output=folder, val_data=val, thresholds=tuple(step.thresholds),
                target_precision=step.target_precision, bootstrap=step.bootstrap, measure_speed=step.speed,
            )
        )

    weights = sorted(model.glob("*.safetensors"))
    run.stage("evaluate", step.model_dump(), tests + ([val] if val else []) + weights, action)
    return json.loads((run.folder / "evaluate" / "report.json").read_text())
