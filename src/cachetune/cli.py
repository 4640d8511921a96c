"""The `cachetune` command: each stage's options are derived from its settings model, then one call and a summary.

Stage modules are imported inside each command, so `cachetune --help` does not load torch.
"""

import inspect
import os
import sys
import time
import types
import typing
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from cachetune.data.settings import PrepareSettings
from cachetune.errors import CachetuneError
from cachetune.evaluate.settings import EvaluateSettings, FeedbackSettings
from cachetune.export.settings import ExportSettings
from cachetune.integrations.settings import LitellmConfigSettings
from cachetune.settings import build
from cachetune.synth.settings import GenerateSettings, JudgeSettings, MineSettings
from cachetune.train.settings import TrainSettings

if TYPE_CHECKING:  # the report's module loads numpy and the stages: imported when a command runs
    from cachetune.evaluate.result import EvaluationReport

app = typer.Typer(
    help="Train, evaluate and serve domain-tuned embedding models for LLM semantic caches.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped into a log (make demo | tee), Rich would cut tables to 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
errors = Console(stderr=True)

STAGE_SETTINGS: dict[str, type[BaseModel]] = {}  # command name -> its settings model
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def run() -> None:
    """The console entry point."""
    if not sys.stderr.isatty():  # a log, not a terminal: no progress-bar repaints (Hugging Face's bars, tqdm's)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")
    app(args=expand_list_options(sys.argv[1:]), prog_name="cachetune")


def flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def list_flags(settings: type[BaseModel]) -> set[str]:
    return {flag(name) for name, field in settings.model_fields.items() if _list_item(field.annotation) is not None}


def expand_list_options(args: list[str]) -> list[str]:
    """`--thresholds 0.8 0.9` -> `--thresholds 0.8 --thresholds 0.9` (Click options take one value per flag)."""
    settings = STAGE_SETTINGS.get(args[0]) if args else None
    multi = list_flags(settings) if settings else {"--stage"} if args[:1] == ["pipeline"] else set()
    expanded, current, values = [], None, 0
    for arg in args:
        if current and not arg.startswith("-"):
            expanded += [current, arg] if values else [arg]
            values += 1
            continue
        current, values = (arg, 0) if arg in multi else (None, 0)
        expanded.append(arg)
    return expanded


def _list_item(annotation) -> type | None:
    """The item type of a tuple[X, ...] or list[X] field, else None."""
    if typing.get_origin(annotation) in (tuple, list):
        return typing.get_args(annotation)[0]
    return None


def _cli_type(annotation):
    """What Typer understands for a settings field's type: tuples of any length become lists; lists of choices
    become lists of text (Typer cannot parse them; the settings model checks each value and names the choices)."""
    item = _list_item(annotation)
    if item is not None:
        return list[str if typing.get_origin(item) is typing.Literal else item]
    if isinstance(annotation, types.UnionType):  # `X | None`
        return typing.Optional[next(arg for arg in typing.get_args(annotation) if arg is not type(None))]  # noqa: UP045
    return annotation


def fail(message: str) -> None:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def stage_command(settings_model: type[BaseModel], name: str, on: typer.Typer = app) -> Callable:
    """Register command NAME on `on` with one option per field of `settings_model` (its type, default and help text).

    The decorated function receives the validated settings; a `CachetuneError` from it ends the command with
    one line on stderr and exit status 1.
    """

    def register(body: Callable[[BaseModel], None]) -> Callable[[BaseModel], None]:
        parameters, annotations = [], {}
        for field_name, field in settings_model.model_fields.items():
            default = ... if field.is_required() else field.get_default(call_default_factory=True)
            if isinstance(default, tuple):
                default = list(default)
            annotations[field_name] = _cli_type(field.annotation)
            names = f"{flag(field_name)}/--no-{flag(field_name)[2:]}" if field.annotation is bool else flag(field_name)
            option = typer.Option(default, names, help=field.description)
            parameters.append(
                inspect.Parameter(field_name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotations[field_name])
            )

        def command(**values) -> None:
            try:
                body(build(settings_model, values, flag))
            except CachetuneError as error:
                fail(str(error))

        command.__signature__ = inspect.Signature(parameters)
        command.__annotations__ = annotations
        command.__doc__ = settings_model.__doc__
        on.command(name)(command)
        STAGE_SETTINGS[name] = settings_model
        return body

    return register


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    table = Table(title=title, title_justify="left")
    for column in header:
        table.add_column(column, justify="left" if column == header[0] else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console.print(table)


def print_report(report: "EvaluationReport") -> None:
    """The side-by-side table of an evaluation report, one per test file of pairs, and the operating thresholds in words."""
    operating = report.operating_thresholds
    for section in report.pairs:
        rows = []
        for name in ("baseline", "tuned"):
            result, points = section.results(name), operating.get(name)
            row = [name, f"{result.ap:.3f}", f"{result.recall_at_p95:.3f}"]
            if points is None:
                row += ["no --val-data", "", "", ""]
            else:
                at = result.at_operating(points.fallback)
                row += [f"{points.threshold:.3f}" + (" (best F0.5)" if points.fallback else "")]
                row += [f"{at['precision']:.3f}", f"{at['recall']:.3f}", f"{at['false_hit_rate']:.3f}"]
            rows.append(row)
        header = ["model", "AP", "recall@P0.95", "threshold (val)", "precision", "recall", "false-hit rate"]
        print_table(section.file, header, rows)
        for metric, result in (section.bootstrap or {}).get("difference", {}).items():
            interval = result["interval"]
            console.print(f"  {metric}: {result['verdict']} ({result['difference']:+.3f}, 95% CI [{interval[0]:+.3f}, {interval[1]:+.3f}])")
    for name, points in operating.items():
        console.print(f"{name} operating threshold: {points.explained(report.target_precision)}", soft_wrap=True)
    if report.cache_config:
        console.print(f"cache config (the tuned model at its operating threshold): {report.cache_config}", soft_wrap=True)


@app.callback()
def main() -> None:
    """Train, evaluate and serve domain-tuned embedding models for LLM semantic caches."""


@stage_command(PrepareSettings, "prepare")
def prepare(settings: PrepareSettings) -> None:
    from cachetune.data.prepare import prepare as run_prepare

    report = run_prepare(settings)
    console.print(f"read {report['rows_read']} rows from {settings.input}; kept {report['queries']['kept']} queries")
    for reason, count in {**report["rows_rejected"], **report["queries"]["dropped"]}.items():
        console.print(f"  dropped {count:>6}  {reason}")
    rows = [
        [split, counts["queries"], counts.get("pairs", "-"), counts.get("positive_pairs", "-")]
        for split, counts in report["splits"].items()
    ]
    print_table(f"prepare -> {settings.output}", ["split", "queries", "pairs", "positive pairs"], rows)


@contextmanager
def progress(label: str, unit: str):
    """An `on_progress(done, total)` callback: a live bar on a terminal, else a line every 30 seconds (logs)."""
    if errors.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = [
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(),
        ]  # fmt: skip
        with Progress(*columns, console=errors) as bar:
            task = bar.add_task(label, total=None)
            yield lambda done, total: bar.update(task, completed=done, total=total)
        return
    started, last = time.time(), [0.0]

    def report(done: int, total: int) -> None:
        if time.time() - last[0] >= 30 or done == total:
            last[0] = time.time()
            errors.print(f"{label}: {done}/{total} {unit}, {time.time() - started:.0f} s", highlight=False)

    yield report


@stage_command(GenerateSettings, "generate")
def generate(settings: GenerateSettings) -> None:
    from cachetune.synth.generate import generate as run_generate

    with progress("generate", "queries") as on_progress:
        report = run_generate(settings, on_progress=on_progress)
    console.print(
        f"{report['queries_done']}/{report['queries']} queries -> {report['rows']} rows; "
        f"{report['completion_tokens_per_second']} tokens/s, {report['queries_per_minute']} queries/min"
    )
    for reason, count in report["rejects"].items():
        console.print(f"  rejected {count:>5}  {reason}")


@stage_command(JudgeSettings, "judge")
def judge(settings: JudgeSettings) -> None:
    from cachetune.synth.judge import judge as run_judge

    with progress("judge", "items") as on_progress:
        report = run_judge(settings, on_progress=on_progress)
    verdicts = ", ".join(f"{count} {verdict}" for verdict, count in report["verdicts"].items())
    console.print(f"{report['items_judged']} items judged ({verdicts}); {report['rows_written']} rows written to {settings.output}")
    if report["kind"] == "pairs":
        agreement = report["agreement"]
        console.print(
            f"against the labels: accuracy {agreement['accuracy']:.3f}, precision of 'same' {agreement['precision_of_same']}, "
            f"recall of 'same' {agreement['recall_of_same']}"
        )


@stage_command(MineSettings, "mine")
def mine(settings: MineSettings) -> None:
    from cachetune.synth.mine import mine as run_mine

    report = run_mine(settings)
    similarity = report.get("mean_negative_similarity")  # absent with negatives_from labels: nothing was ranked
    console.print(
        f"{report['pairs']} pairs -> {report['triplets']} triplets ({report['pairs_without_negative']} pairs got none)"
        + (f"; mean cosine anchor-negative {similarity}" if similarity is not None else "")
    )


@stage_command(TrainSettings, "train")
def train(settings: TrainSettings) -> None:
    from cachetune.train.trainer import train as run_train

    record = run_train(settings, command=["cachetune", *sys.argv[1:]])
    if record is None:  # a DDP worker other than rank 0
        return
    validation = record.validation
    console.print(f"trained {record.steps} steps in {record.wall_time_seconds} s; trainable parameters {record.trainable_parameters:,}")
    if validation.final:
        rows = [
            [name, f"{scores['val_replay_auc']:.4f}", f"{scores['val_ap']:.4f}", f"{scores['val_recall_at_p95']:.4f}"]
            for name, scores in (("base", validation.base), (f"trained (step {validation.best_step})", validation.final))
        ]
        print_table(f"validation on {', '.join(map(str, settings.val_data))}", ["model", "replay AUC", "AP", "recall@P0.95"], rows)
    if record.general_guard:
        guard = record.general_guard
        console.print(f"general guard: update scaled by {guard.chosen_scale} (each general set within {guard.tolerance} of the base)")
    console.print(f"saved to {settings.output}")


@stage_command(ExportSettings, "export")
def export(settings: ExportSettings) -> None:
    from cachetune.export.run import export_model

    info = export_model(settings)
    for name, parity in info["parity"].items():
        console.print(f"ONNX {name}: cosine to torch mean {parity['mean_cosine']:.4f}, min {parity['min_cosine']:.4f}")
    console.print(f"wrote {', '.join(info['files'])} to {settings.output}")


@stage_command(EvaluateSettings, "evaluate")
def evaluate(settings: EvaluateSettings) -> None:
    from cachetune.evaluate.run import evaluate as run_evaluate

    report = run_evaluate(settings)
    print_report(report)
    console.print(f"report: {Path(report.output) / 'report.md'}")


@stage_command(FeedbackSettings, "evaluate-feedback")
def evaluate_feedback(settings: FeedbackSettings) -> None:
    from cachetune.evaluate.feedback import advice
    from cachetune.evaluate.feedback import evaluate_feedback as run_feedback

    result = run_feedback(settings)
    rows = [
        [
            domain,
            s["reported"],
            s["wrong"],
            f"{s['precision']:.3f}",
            f"{s['precision_lower_bound']:.3f}",
            advice(s, settings.target_precision),
        ]
        for domain, s in result["domains"].items()
    ]
    print_table(
        f"feedback in {settings.feedback_log}", ["domain", "reported", "wrong", "precision", "95% lower bound", "recommendation"], rows
    )
    console.print(f"report: {result['output']}")


@stage_command(LitellmConfigSettings, "litellm-config")
def litellm_config(settings: LitellmConfigSettings) -> None:
    from cachetune.integrations.litellm import write_proxy_config

    path = write_proxy_config(settings)
    console.print(
        f"LiteLLM proxy config: {path} (run: litellm --config {path}; `cachetune serve --config {settings.cache_config}` beside it)"
    )


@app.command()
def serve(
    config: Annotated[Path, typer.Option(help="Cache configuration (YAML): domains, models, thresholds, TTLs, store.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    allow_unauthenticated: Annotated[
        bool, typer.Option("--allow-unauthenticated", help="Listen beyond loopback without a semantic_cache.auth block.")
    ] = False,
) -> None:
    """Run the multi-domain semantic cache as an HTTP service (check, store, invalidate, gateway, healthz, metrics)."""
    import uvicorn

    from cachetune.cache.semantic_cache import SemanticCache
    from cachetune.cache.service import create_app
    from cachetune.cache_config import load_config

    try:
        settings = load_config(config)
        if settings.auth is None and host not in LOOPBACK and not allow_unauthenticated:
            fail(
                f"{config} has no semantic_cache.auth block: refusing to listen on {host}, where anyone could read any tenant's "
                "cache; add API keys (auth.keys), or pass --allow-unauthenticated"
            )
        cache = SemanticCache(settings)
    except CachetuneError as error:
        fail(str(error))
    if settings.auth is None:
        console.print(f"no authentication (no semantic_cache.auth): the tenant is whatever a caller says; listening on {host} only")
    console.print(f"serving domains {', '.join(cache.domains)} on http://{host}:{port}")
    with cache:  # closed after the server stops: the embedded store makes its snapshot, the encoders stop
        uvicorn.run(create_app(cache), host=host, port=port, log_level="warning")


@app.command()
def pipeline(
    config: Annotated[Path, typer.Option(help="Pipeline configuration (YAML), e.g. configs/programming.yaml.")],
    run_dir: Annotated[Path | None, typer.Option(help="Run folder; default: the config's run_dir, else runs/NAME.")] = None,
    stage: Annotated[
        list[str] | None, typer.Option(help="Run only these kinds of stage, in pipeline order: prepare generate mine train evaluate.")
    ] = None,
) -> None:
    """prepare -> generate/mine -> train -> evaluate; unchanged stages are skipped, interrupted ones resumed."""
    from cachetune.pipeline import STAGES, run_pipeline

    unknown = sorted(set(stage or ()) - set(STAGES))
    if unknown:
        fail(f"--stage {', '.join(unknown)}: not a stage; choose from {', '.join(STAGES)}")
    try:
        run, report = run_pipeline(
            config, run_dir, stages=tuple(stage or STAGES), on_stage=lambda name, what: console.print(f"  {name:<24} {what}")
        )
    except CachetuneError as error:
        fail(str(error))
    if report is not None:
        print_report(report)
        console.print(f"report: {run.folder / 'evaluate' / 'report.md'}")
    console.print(f"run folder: {run.folder}")
