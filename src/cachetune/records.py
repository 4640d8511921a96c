"""Typed, versioned JSONL records passed between the pipeline's stages.

One JSON object a line. Reading validates every line and fails with ``FILE:LINE: what is wrong``;
with ``on_error="skip"`` a bad line goes to a `RejectLog` instead, which the caller writes beside
its output as ``OUTPUT.rejects.jsonl``. Whole-file writes are atomic (temporary file, then rename),
so an interrupted write never leaves half a file under the real name.
"""

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from cachetune.errors import InputError

SCHEMA_VERSION = 1

OnError = Literal["fail", "skip"]
Text = Annotated[str, StringConstraints(min_length=1)]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Bumped when a field changes meaning; readers refuse versions they do not know.
    schema_version: Literal[1] = SCHEMA_VERSION


class Query(Record):
    """One real user query. Rows sharing `group` must never be split across train/val/test."""

    id: Text
    text: Text
    domain: Text
    source: Text
    group: Text


class Pair(Record):
    """Two queries and whether they ask the same thing (1) or not (0)."""

    query1: Text
    query2: Text
    label: Literal[0, 1]
    domain: Text
    similarity_score: float | None = None
    source: Text


class Triplet(Record):
    """An anchor, a paraphrase with its intent, and a look-alike that asks something else."""

    anchor: Text
    positive: Text
    hard_negative: Text
    domain: Text
    similarity_score: float | None = None
    source: Text


class Feedback(Record):
    """What a caller reported of one hit the cache served (the cache's `feedback_log`): the served entry's similarity
    to the prompt (None when the hit was served before this process started) and whether its answer was right."""

    time: float
    domain: Text
    id: int
    correct: bool
    similarity: float | None = None
    tier: Literal["exact", "semantic"] | None = None


R = TypeVar("R", bound=Record)


class RejectLog:
    """Lines skipped under ``on_error="skip"``, each with where it was and why."""

    def __init__(self) -> None:
        self.entries: list[dict] = []

    def add(self, where: str, reason: str, raw: object) -> None:
        self.entries.append({"where": where, "reason": reason, "raw": raw})

    def counts(self) -> dict[str, int]:
        return dict(Counter(entry["reason"].split(":")[0] for entry in self.entries))

    def __len__(self) -> int:
        return len(self.entries)

    def write(self, path: Path) -> None:
        write_jsonl(path, self.entries)


def rejects_path(output: Path) -> Path:
    """``out/triplets.jsonl`` -> ``out/triplets.rejects.jsonl``; a folder gets ``rejects.jsonl`` inside."""
    output = Path(output)
    if output.suffix == ".jsonl":
        return output.with_suffix(".rejects.jsonl")
    return output / "rejects.jsonl"


def iter_json_lines(path: Path, on_error: OnError = "fail", rejects: RejectLog | None = None) -> Iterator[tuple[str, dict]]:
    """Yield ``("FILE:LINE", object)`` for each non-blank line of a JSONL file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                _reject(where, f"invalid JSON: {error.msg} at column {error.colno}", line.rstrip("\n"), on_error, rejects)
                continue
            if not isinstance(value, dict):
                _reject(where, f"expected a JSON object, got {type(value).__name__}", value, on_error, rejects)
                continue
            yield where, value


def read_records(path: Path, record_type: type[R], on_error: OnError = "fail", rejects: RejectLog | None = None) -> list[R]:
    """Read and validate a JSONL file of `record_type` records."""
    records = []
    for where, value in iter_json_lines(path, on_error, rejects):
        try:
            records.append(record_type.model_validate(value))
        except ValidationError as error:
            _reject(where, describe_validation_error(error), value, on_error, rejects)
    return records


def read_pairs_or_triplets(path: Path, on_error: OnError = "fail", rejects: RejectLog | None = None) -> tuple[str, list]:
    """("pairs" or "triplets", records) for a file of either, told apart by its first record's fields."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with path.open(encoding="utf-8") as lines:
        first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise InputError(f"{path}: empty file, no records")
    try:
        fields = set(json.loads(first))
    except (json.JSONDecodeError, TypeError):
        fields = set()
    if "anchor" in fields:
        return "triplets", read_records(path, Triplet, on_error, rejects)
    if "query1" in fields:
        return "pairs", read_records(path, Pair, on_error, rejects)
    raise InputError(f"{path}:1: neither a triplet (anchor, positive, hard_negative) nor a pair (query1, query2, label)")


def read_labelled_pairs(paths: "Iterable[Path]") -> list[Pair]:
    """Labelled pairs from files of pairs or of triplets (a triplet gives its (anchor, positive) as label 1 and its
    (anchor, hard_negative) as label 0), each distinct (query1, query2, label) once, in file order."""
    pairs: dict[tuple[str, str, int], Pair] = {}
    for path in paths:
        kind, records = read_pairs_or_triplets(path)
        for record in records:
            found = (
                [record]
                if kind == "pairs"
                else [
                    Pair(query1=record.anchor, query2=record.positive, label=1, domain=record.domain, source=record.source),
                    Pair(query1=record.anchor, query2=record.hard_negative, label=0, domain=record.domain, source=record.source),
                ]
            )
            for pair in found:
                pairs.setdefault((pair.query1, pair.query2, pair.label), pair)
    return list(pairs.values())


def record_texts(path: Path) -> list[str]:
    """Every text of a file of queries, pairs or triplets, in file order."""
    lines = iter_json_lines(path)
    first = next(lines, (None, {}))[1]
    lines.close()
    if isinstance(first, dict) and "text" in first:
        return [query.text for query in read_records(path, Query)]
    kind, records = read_pairs_or_triplets(path)
    if kind == "pairs":
        return [text for pair in records for text in (pair.query1, pair.query2)]
    return [text for triplet in records for text in (triplet.anchor, triplet.positive, triplet.hard_negative)]


def describe_validation_error(error: ValidationError) -> str:
    """The first problem pydantic found, in words a data file's author can act on."""
    problem = error.errors()[0]
    field = ".".join(str(part) for part in problem["loc"]) or "record"
    if problem["type"] == "missing":
        return f"missing field '{field}'"
    if problem["type"] == "extra_forbidden":
        return f"unknown field '{field}'"
    return f"field '{field}': {problem['msg']}"


def _reject(where: str, reason: str, raw: object, on_error: OnError, rejects: RejectLog | None) -> None:
    if on_error == "fail" or rejects is None:
        raise InputError(f"{where}: {reason}")
    rejects.add(where, reason, raw)


@contextmanager
def atomic_write(path: Path) -> Iterator[IO[str]]:
    """Open a temporary file beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o666 & ~_umask())  # temporary files are created 0600
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def to_json_line(value: Record | dict) -> str:
    data = value.model_dump() if isinstance(value, Record) else value
    return json.dumps(data, ensure_ascii=False) + "\n"


def write_jsonl(path: Path, values: Iterable[Record | dict]) -> int:
    """Atomically write one JSON object a line; returns the number of lines."""
    count = 0
    with atomic_write(path) as out:
        for value in values:
            out.write(to_json_line(value))
            count += 1
    return count


def write_json(path: Path, value: object) -> None:
    """Atomically write a JSON document (reports, metadata), keys in insertion order."""
    with atomic_write(path) as out:
        json.dump(value, out, indent=2, ensure_ascii=False)
        out.write("\n")
