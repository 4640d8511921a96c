"""The `cachetune` command: parse flags, call one function per stage, print its summary.

Stage modules are imported inside each command, so `cachetune --help` does not load torch.
"""

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
console = Console()
errors = Console(stderr=True)

SourceName = Literal["conala", "medquad", "staqc", "cosqa", "mqp", "rqe", "meqsum", "jsonl", "csv", "text", "hf"]
OnErrorOption = Annotated[
    Literal["fail", "skip"],
    typer.Option(help="fail: stop at the first bad row; skip: set bad rows aside in OUTPUT.rejects.jsonl and go on."),
]


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

    try:
        return function(*args, **kwargs)
    except (RecordError, ModelError) as error:
        fail(str(error))


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    table = Table(title=title, title_justify="left")
    for column in header:
        table.add_column(column, justify="left" if column == header[0] else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console.print(table)


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
