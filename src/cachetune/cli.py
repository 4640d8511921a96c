"""The `cachetune` command: parse flags, call one function per stage, print its summary.

Stage modules are imported inside each command, so `cachetune --help` does not load torch.
"""

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Train, evaluate and serve domain-tuned embedding models for LLM semantic caches.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped into a log (make demo | tee), Rich would cut tables to 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
errors = Console(stderr=True)

SourceName = Literal["conala", "medquad", "staqc", "cosqa", "mqp", "rqe", "meqsum", "stsb", "mrpc", "jsonl", "csv", "text", "hf"]
OnErrorOption = Annotated[
    Literal["fail", "skip"],
    typer.Option(help="fail: stop at the first bad row; skip: set bad rows aside in OUTPUT.rejects.jsonl and go on."),
]


# Options that take several values after one flag, as in `--thresholds 0.80 0.85 0.90`.
MULTI_VALUE_OPTIONS = ("--thresholds",)


def run() -> None:
    """The console entry point."""
    app(args=expand_multi_value_options(sys.argv[1:]), prog_name="cachetune")


def expand_multi_value_options(args: list[str]) -> list[str]:
    """`--thresholds 0.8 0.9` -> `--thresholds 0.8 --thresholds 0.9` (Click options take one value per flag)."""
    expanded, flag, values = [], None, 0
    for arg in args:
        if flag and not arg.startswith("-"):
            expanded += [flag, arg] if values else [arg]
            values += 1
            continue
        flag, values = (arg, 0) if arg in MULTI_VALUE_OPTIONS else (None, 0)
        expanded.append(arg)
    return expanded


@app.callback()
def main() -> None:
    """Train, evaluate and serve domain-tuned embedding models for LLM semantic caches."""


def fail(message: str) -> None:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def run_stage(function, *args, **kwargs):
    """Call a stage; its input errors end the command with one clear line instead of a traceback."""
    from cachetune.models import ModelError
    from cachetune.records import RecordError
    from cachetune.synth.backends.base import BackendError

    try:
        return function(*args, **kwargs)
    except (RecordError, ModelError, BackendError) as error:
        fail(str(error))


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    table = Table(title=title, title_justify="left")
    for column in header:
        table.add_column(column, justify="left" if column == header[0] else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console.print(table)


def print_report(report: dict) -> None:
    """The side-by-side table of an evaluation report, one per test file of pairs."""
    for section in report["pairs"]:
        rows = []
        for name in ("baseline", "tuned"):
            result = section[name]
            point = (result.get("at_operating_thresholds") or {}).get("target_precision")
            rows.append(
                [name, f"{result['ap']:.3f}", f"{result['recall_at_p95']:.3f}"]
                + ([f"{point['threshold']:.3f}", f"{point['precision']:.3f}", f"{point['recall']:.3f}", f"{point['false_hit_rate']:.3f}"] if point else ["-"] * 4)
            )
        print_table(section["file"], ["model", "AP", "recall@P0.95", "threshold (val)", "precision", "recall", "false-hit rate"], rows)
        for metric, result in section.get("bootstrap", {}).get("difference", {}).items():
            console.print(f"  {metric}: {result['verdict']} ({result['difference']:+.3f}, 95% CI [{result['interval'][0]:+.3f}, {result['interval'][1]:+.3f}])")


@app.command()
def prepare(
    source: Annotated[SourceName, typer.Option(help="Dataset loader; jsonl/csv/text for your own logs, hf for `datasets`.")],
    input: Annotated[str, typer.Option("--input", help="File, folder, or (with --source hf) a hub dataset id.")],
    output: Annotated[Path, typer.Option(help="Folder for queries/pairs .{train,val,test}.jsonl and the report.")],
    domain: Annotated[str | None, typer.Option(help="Domain of the queries; named sources know theirs.")] = None,
    min_chars: int = 10,
    max_chars: int = 200,
    dedupe: Annotated[Literal["exact", "near"], typer.Option(help="near: also drop MinHash near-duplicates.")] = "near",
    near_threshold: Annotated[float, typer.Option(help="Jaccard similarity of character 5-grams.")] = 0.95,
    val: float = 0.05,
    test: float = 0.1,
    seed: int = 42,
    max_queries: Annotated[int | None, typer.Option(help="Keep a seeded sample of whole groups, at most N queries.")] = None,
    on_error: OnErrorOption = "fail",
    text_field: Annotated[str | None, typer.Option(help="Field holding the query (jsonl, csv, hf).")] = None,
    group_field: Annotated[str | None, typer.Option(help="Field whose equal values must stay in one split.")] = None,
    hf_split: Annotated[str, typer.Option(help="Split to read with --source hf.")] = "train",
) -> None:
    """Clean, de-duplicate and split real queries (and labelled pairs) without leakage."""
    from cachetune.data.prepare import PrepareSettings
    from cachetune.data.prepare import prepare as run_prepare

    settings = PrepareSettings(
        source, input, output, domain, min_chars, max_chars, dedupe, near_threshold, val, test, seed, max_queries,
        on_error, text_field, group_field, hf_split,
    )
    report = run_stage(run_prepare, settings)
    console.print(f"read {report['rows_read']} rows from {input}; kept {report['queries']['kept']} queries")
    for reason, count in {**report["rows_rejected"], **report["queries"]["dropped"]}.items():
        console.print(f"  dropped {count:>6}  {reason}")
    rows = [[split, counts["queries"], counts.get("pairs", "-"), counts.get("positive_pairs", "-")] for split, counts in report["splits"].items()]
    print_table(f"prepare -> {output}", ["split", "queries", "pairs", "positive pairs"], rows)


@app.command()
def generate(
    input: Annotated[Path, typer.Option("--input", help="queries.*.jsonl from `cachetune prepare`.")],
    output: Annotated[Path, typer.Option(help="Triplets JSONL; its progress log and generate_report.json go beside it.")],
    domain: Annotated[str | None, typer.Option(help="Prompt domain (programming, medical, else generic); default: each query's.")] = None,
    backend: Annotated[Literal["llama-cpp", "openai", "vllm"], typer.Option(help="Where the LLM runs.")] = "llama-cpp",
    model: Annotated[str | None, typer.Option(help="llama-cpp: qwen2.5-coder-0.5b (default), qwen2.5-coder-1.5b or a .gguf; openai/vllm: the model name.")] = None,
    paraphrases: int = 3,
    negatives: int = 2,
    batch_size: Annotated[int, typer.Option(help="Queries per backend call (llama-cpp: sequences decoded together).")] = 32,
    tensor_parallel: Annotated[int, typer.Option(help="vllm: GPUs per model.")] = 1,
    base_url: Annotated[str | None, typer.Option(help="openai: the server, e.g. http://127.0.0.1:8000/v1.")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="openai: environment variable that holds the API key.")] = None,
    concurrency: Annotated[int, typer.Option(help="openai: requests in flight.")] = 8,
    timeout: Annotated[float, typer.Option(help="openai: seconds to wait for one answer.")] = 120.0,
    retries: Annotated[int, typer.Option(help="openai: retries of a failed request, with exponential backoff.")] = 4,
    max_queries: int | None = None,
    resume: Annotated[bool, typer.Option("--resume", help="Finish an interrupted run: every query exactly once.")] = False,
    seed: int = 42,
    temperature: float = 0.7,
    max_tokens: int = 384,
    on_error: OnErrorOption = "fail",
) -> None:
    """Triplets (query, paraphrase, hard negative) from real queries with an instruct LLM."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from cachetune.synth.generate import GenerateError, GenerateSettings
    from cachetune.synth.generate import generate as run_generate

    settings = GenerateSettings(
        input=input, output=output, domain=domain, backend=backend, model=model, paraphrases=paraphrases, negatives=negatives,
        batch_size=batch_size, tensor_parallel=tensor_parallel, base_url=base_url, api_key_env=api_key_env, concurrency=concurrency,
        timeout=timeout, retries=retries, max_queries=max_queries, resume=resume, seed=seed, temperature=temperature, max_tokens=max_tokens, on_error=on_error,
    )
    columns = [TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TextColumn("queries"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, console=errors) as progress:
        task = progress.add_task("generate", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            report = run_stage(run_generate, settings, on_progress=update)
        except GenerateError as error:
            progress.stop()
            fail(str(error))
    console.print(
        f"{report['queries_done']}/{report['queries']} queries -> {report['rows']} triplets; "
        f"{report['completion_tokens_per_second']} tokens/s, {report['queries_per_minute']} queries/min"
    )
    for reason, count in report["rejects"].items():
        console.print(f"  rejected {count:>5}  {reason}")


@app.command()
def mine(
    input: Annotated[Path, typer.Option("--input", help="Labelled pairs (label 1 used) or triplets (anchor, positive used).")],
    corpus: Annotated[Path, typer.Option(help="queries.train.jsonl: where negatives come from (with groups).")],
    output: Annotated[Path, typer.Option(help="Triplets JSONL; a .report.json goes beside it.")],
    base_model: Annotated[str | None, typer.Option(help="Model that ranks candidates; default: packaged all-MiniLM-L6-v2.")] = None,
    num_negatives: int = 3,
    range_min: Annotated[int, typer.Option(help="Skip the N most similar candidates (likely unlabelled paraphrases).")] = 10,
    range_max: Annotated[int, typer.Option(help="Look no further than rank N.")] = 50,
    margin: Annotated[float, typer.Option(help="Skip candidates within this cosine of the positive.")] = 0.1,
) -> None:
    """Hard negatives for labelled pairs, mined from real queries by embedding similarity (other groups only)."""
    from cachetune.synth.mine import MineSettings
    from cachetune.synth.mine import mine as run_mine

    report = run_stage(run_mine, MineSettings(input, corpus, output, base_model, num_negatives, range_min, range_max, margin))
    console.print(
        f"{report['pairs']} pairs -> {report['triplets']} triplets ({report['pairs_without_negative']} pairs got none); "
        f"mean cosine anchor-negative {report['mean_negative_similarity']}"
    )


LOSS_NAMES = ["mnr", "cached-mnr", "gist", "triplet", "infonce", "cosine", "hard-triplet", "online-contrastive"]


@app.command()
def train(
    train_data: Annotated[list[Path], typer.Option(help="Triplet or pair JSONL; repeat for mixed inputs.")],
    output: Annotated[Path, typer.Option(help="Folder for the adapter (or model), training_info.json and a model card.")],
    val_data: Annotated[Path | None, typer.Option(help="Labelled pairs: validation at each checkpoint, best one kept.")] = None,
    base_model: Annotated[str | None, typer.Option(help="Local folder or hub id; default: packaged all-MiniLM-L6-v2.")] = None,
    epochs: float = 1.0,
    batch_size: int = 128,
    lr: float = 2e-5,
    temperature: Annotated[float | None, typer.Option(help="Ranking losses: scale = 1/temperature (mnr 0.05, infonce 0.07, gist 0.01).")] = None,
    warmup_ratio: float = 0.1,
    loss: Annotated[
        list[str],
        typer.Option(help=f"{' | '.join(LOSS_NAMES)}; one per kind of file, repeat for mixed inputs (--loss mnr --loss online-contrastive)."),
    ] = ["mnr"],  # noqa: B006
    margin: Annotated[float | None, typer.Option(help="Triplet and pair losses; default by loss and distance.")] = None,
    distance: Annotated[Literal["cosine", "euclidean"], typer.Option(help="triplet and hard-triplet distance.")] = "cosine",
    mining: Annotated[Literal["hardest", "semi-hard", "all"], typer.Option(help="hard-triplet: which triplets in a batch.")] = "hardest",
    lora_rank: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.1,
    target_modules: Annotated[str, typer.Option(help="Comma-separated module names that get LoRA.")] = "query,value",
    no_lora: Annotated[bool, typer.Option("--no-lora", help="Fine-tune every weight instead of a LoRA adapter.")] = False,
    max_seq_length: Annotated[int, typer.Option(help="Tokens per text; longer texts are cut (cost grows with it).")] = 128,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N steps (overrides --epochs).")] = None,
    checkpoint_steps: Annotated[int | None, typer.Option(help="Checkpoint and validate every N steps; default ~10 per run.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its last checkpoint.")] = False,
    seed: int = 42,
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="Write TensorBoard logs to OUTPUT/tensorboard.")] = False,
) -> None:
    """Train a LoRA adapter (or a full model) with sentence-transformers losses that use the hard negatives."""
    from cachetune.train.trainer import TrainSettings
    from cachetune.train.trainer import train as run_train

    settings = TrainSettings(
        train_data=tuple(train_data), output=output, val_data=val_data, base_model=base_model, epochs=epochs,
        batch_size=batch_size, lr=lr, temperature=temperature, warmup_ratio=warmup_ratio, losses=tuple(loss),
        margin=margin, distance=distance, mining=mining, lora=not no_lora, lora_rank=lora_rank, lora_alpha=lora_alpha,
        lora_dropout=lora_dropout, target_modules=tuple(m.strip() for m in target_modules.split(",") if m.strip()),
        max_seq_length=max_seq_length, max_steps=max_steps, checkpoint_steps=checkpoint_steps, resume=resume,
        seed=seed, tensorboard=tensorboard,
    )
    info = run_stage(run_train, settings, command=["cachetune", *sys.argv[1:]])
    if not info:  # a DDP worker other than rank 0
        return
    validation = info["validation"]
    console.print(f"trained {info['steps']} steps in {info['wall_time_seconds']} s; trainable parameters {info['trainable_parameters']:,}")
    if validation["final"]:
        rows = [
            [name, f"{scores['val_ap']:.4f}", f"{scores['val_recall_at_p95']:.4f}"]
            for name, scores in (("base", validation["base"]), (f"trained (step {validation['best_step']})", validation["final"]))
        ]
        print_table(f"validation on {val_data}", ["model", "AP", "recall@P0.95"], rows)
    console.print(f"saved to {output}")


@app.command()
def export(
    model: Annotated[str, typer.Option(help="Adapter folder, model folder or hub id.")],
    output: Annotated[Path, typer.Option(help="Folder to write.")],
    merge: Annotated[bool, typer.Option("--merge", help="A full sentence-transformers model with the adapter merged in.")] = False,
    onnx: Annotated[bool, typer.Option("--onnx", help="onnx/model.onnx (dynamo exporter), checked against torch.")] = False,
    int8: Annotated[bool, typer.Option("--int8", help="onnx/model_int8.onnx: per-channel int8 of the weight MatMuls.")] = False,
) -> None:
    """Merge an adapter into its base, and/or export ONNX (fp32, int8) with a parity check against torch."""
    from cachetune.export import export_model

    info = run_stage(export_model, model, output, merge, onnx, int8)
    for name, parity in info["parity"].items():
        console.print(f"ONNX {name}: cosine to torch mean {parity['mean_cosine']:.4f}, min {parity['min_cosine']:.4f}")
    console.print(f"wrote {', '.join(info['files'])} to {output}")


@app.command()
def evaluate(
    model: Annotated[str, typer.Option(help="Adapter folder, merged model, ONNX export, or base model id/path.")],
    test_data: Annotated[list[Path], typer.Option(help="Labelled pairs and/or triplets the model never saw; repeat for several.")],
    val_data: Annotated[Path | None, typer.Option(help="Labelled pairs that choose each model's operating threshold.")] = None,
    baseline: Annotated[str | None, typer.Option(help="Default: the adapter's base model, else all-MiniLM-L6-v2.")] = None,
    thresholds: Annotated[list[float], typer.Option(help="Fixed thresholds to report: --thresholds 0.80 0.85 0.90 0.95.")] = [0.80, 0.85, 0.90, 0.95],  # noqa: B006
    target_precision: float = 0.95,
    output: Annotated[Path | None, typer.Option(help="Report folder; default reports/<model name>.")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for 95% intervals (0: none).")] = 1000,
    seed: int = 42,
    speed: Annotated[bool, typer.Option(help="Measure encode latency and throughput.")] = True,
) -> None:
    """Tuned model and baseline side by side: precision, recall, false hits, thresholds, replay, probes, speed."""
    from cachetune.evaluate.run import EvaluateSettings
    from cachetune.evaluate.run import evaluate as run_evaluate

    output = output or Path("reports") / Path(model.rstrip("/")).name
    settings = EvaluateSettings(
        model=model, test_data=tuple(test_data), output=output, baseline=baseline, val_data=val_data, thresholds=tuple(thresholds),
        target_precision=target_precision, bootstrap=bootstrap, seed=seed, measure_speed=speed,
    )
    report = run_stage(run_evaluate, settings)
    print_report(report)
    console.print(f"report: {output / 'report.md'}")


@app.command()
def serve(
    config: Annotated[Path, typer.Option(help="Cache configuration (YAML): domains, models, thresholds, TTLs, store.")],
    host: str = "127.0.0.1",
    port: int = 8080,
) -> None:
    """Run the multi-domain semantic cache as an HTTP service (check, store, healthz, metrics)."""
    import uvicorn

    from cachetune.cache.semantic_cache import SemanticCache
    from cachetune.cache.service import create_app

    cache = run_stage(SemanticCache.from_config, config)
    console.print(f"serving domains {', '.join(cache.domains)} on http://{host}:{port}")
    uvicorn.run(create_app(cache), host=host, port=port, log_level="warning")


@app.command()
def pipeline(
    config: Annotated[Path, typer.Option(help="Pipeline configuration (YAML), e.g. configs/programming.yaml.")],
    run_dir: Annotated[Path | None, typer.Option(help="Run folder; default: the config's run_dir, else runs/NAME.")] = None,
) -> None:
    """prepare -> generate/mine -> train -> evaluate; unchanged stages are skipped, interrupted ones resumed."""
    from cachetune.pipeline import run_pipeline

    run, report = run_stage(run_pipeline, config, run_dir)
    for stage, outcome in run.log:
        console.print(f"  {stage:<24} {outcome}")
    print_report(report)
    console.print(f"run folder: {run.folder}; report: {run.folder / 'evaluate' / 'report.md'}")
