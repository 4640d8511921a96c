"""One small loader per dataset: raw rows in, queries and labelled pairs out.

A source is a row reader (JSONL, a JSON array, CSV, plain text, or a `datasets` dataset) and a row
converter that knows the dataset's fields and what a group is in it (one Stack Overflow question,
one MedQuAD focus, one doctor-rewritten source question). Group ids are prefixed with the source
name, so two sources never share one by accident. A text's group defaults to the text itself.
"""

import csv
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cachetune.data.settings import PrepareSettings
from cachetune.errors import InputError
from cachetune.records import RejectLog, iter_json_lines
from cachetune.text import match_key

Rows = Iterator[tuple[str, dict]]


class RowError(InputError):
    """A row the converter cannot use; the reader adds where it is."""


@dataclass(frozen=True)
class SourceQuery:
    text: str
    group: str


@dataclass(frozen=True)
class SourcePair:
    text1: str
    text2: str
    label: int
    group: str
    source: str
    score: float | None = None  # a graded similarity from the source (STS-B), scaled to [0, 1]


@dataclass
class SourceData:
    queries: list[SourceQuery] = field(default_factory=list)
    pairs: list[SourcePair] = field(default_factory=list)
    rows_read: int = 0
    # Rows deliberately left out, by reason (not errors: e.g. RQE's random negatives).
    skipped: Counter = field(default_factory=Counter)


Converter = Callable[[dict, SourceData], None]


def _text(row: dict, name: str) -> str:
    if name not in row:
        raise RowError(f"missing field '{name}'")
    value = row[name]
    if not isinstance(value, str):
        raise RowError(f"field '{name}': expected text, got {type(value).__name__}")
    return value


def _optional_text(row: dict, name: str) -> str | None:
    return _text(row, name) if row.get(name) is not None else None


def _label(row: dict, name: str = "label") -> int:
    value = row.get(name)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        value = int(value)
    if value not in (0, 1) or isinstance(value, float):
        raise RowError(f"field '{name}': expected 0 or 1, got {value!r}")
    return int(value)


def _group_id(row: dict, name: str) -> str:
    if row.get(name) is None:
        raise RowError(f"missing field '{name}'")
    return str(row[name])


def _add_pair(data: SourceData, text1: str, text2: str, label: int, group: str, source: str, score: float | None = None) -> None:
    data.queries += [SourceQuery(text1, group), SourceQuery(text2, group)]
    data.pairs.append(SourcePair(text1, text2, label, group, source, score))


def convert_conala(row: dict, data: SourceData) -> None:
    """Stack Overflow title (`intent`) and an annotator's rewrite: a human paraphrase pair."""
    intent = _text(row, "intent")
    rewrite = _optional_text(row, "rewritten_intent")
    group = f"conala:{_group_id(row, 'question_id')}"
    if rewrite is None:
        data.queries.append(SourceQuery(intent, group))
    else:
        _add_pair(data, intent, rewrite, 1, group, "conala-rewrite")


def convert_medquad(row: dict, data: SourceData) -> None:
    """NIH template questions; every question about one focus (disease, drug) is one group."""
    data.queries.append(SourceQuery(_text(row, "question"), f"medquad:{match_key(_text(row, 'focus'))}"))


def convert_staqc(row: dict, data: SourceData) -> None:
    data.queries.append(SourceQuery(_text(row, "title"), f"staqc:{_group_id(row, 'question_id')}"))


def convert_cosqa(row: dict, data: SourceData) -> None:
    query = _text(row, "query")
    data.queries.append(SourceQuery(query, f"cosqa:{match_key(query)}"))


def convert_mqp(row: dict, data: SourceData) -> None:
    """Doctor-written pairs: each source question has one same-intent and one related-but-different rewrite."""
    question = _text(row, "question_1")
    _add_pair(data, question, _text(row, "question_2"), _label(row), f"mqp:{match_key(question)}", "mqp")


def convert_rqe(row: dict, data: SourceData) -> None:
    """Question entailment. Random negatives (train) are left out: they are easy and reuse a few FAQs
    across hundreds of groups, which would tie most of the data into one split."""
    if row.get("type") == "originalQ-shortRandQ":
        data.skipped["random_negative"] += 1
        return
    question = _text(row, "chq")
    _add_pair(data, question, _text(row, "faq"), _label(row), f"rqe:{match_key(question)}", "rqe")


def convert_meqsum(row: dict, data: SourceData) -> None:
    """A long consumer health question and an expert's one-line summary of it."""
    group = f"meqsum:{_group_id(row, 'File')}"
    _add_pair(data, _text(row, "CHQ"), _text(row, "Summary"), 1, group, "meqsum")


STSB_SAME_MEANING = 4.0  # of 5: "mostly equivalent" and up count as the same meaning


def convert_stsb(row: dict, data: SourceData) -> None:
    """STS Benchmark: a sentence pair with a 0-5 similarity; label 1 from 4 up, the score kept as similarity_score."""
    try:
        score = float(_text(row, "score"))
    except ValueError:
        raise RowError(f"field 'score': not a number: {row['score']!r}") from None
    first = _text(row, "sentence1")
    _add_pair(data, first, _text(row, "sentence2"), int(score >= STSB_SAME_MEANING), f"stsb:{match_key(first)}", "stsb", score / 5)


def convert_mrpc(row: dict, data: SourceData) -> None:
    """Microsoft Research Paraphrase Corpus: news sentence pairs judged paraphrase (1) or not (0)."""
    first = _text(row, "#1 String")
    _add_pair(data, first, _text(row, "#2 String"), _label(row, "Quality"), f"mrpc:{match_key(first)}", "mrpc")


def generic_converter(name: str, text_field: str, group_field: str | None) -> Converter:
    def convert(row: dict, data: SourceData) -> None:
        text = _text(row, text_field)
        group = _group_id(row, group_field) if group_field else match_key(text)
        data.queries.append(SourceQuery(text, f"{name}:{group}"))

    return convert


def json_array_rows(path: Path) -> Rows:
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a JSON array of objects")
    for number, item in enumerate(items, start=1):
        yield f"{path}: item {number}", item


def csv_rows(path: Path) -> Rows:
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file")
    with Path(path).open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield f"{path}:{reader.line_num}", row


def tsv_rows(path: Path, columns: list[str] | None = None) -> Rows:
    """Tab-separated rows, unquoted; with `columns` the file has no header (extra trailing fields are ignored)."""
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file")
    with Path(path).open(encoding="utf-8-sig") as handle:
        header = columns or handle.readline().rstrip("\n").split("\t")
        first_line = 1 if columns else 2
        for number, line in enumerate(handle, start=first_line):
            if line.strip():
                yield f"{path}:{number}", dict(zip(header, line.rstrip("\n").split("\t")))


STSB_COLUMNS = ["genre", "file", "year", "id", "score", "sentence1", "sentence2"]


def text_rows(path: Path) -> Rows:
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file")
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield f"{path}:{number}", {"text": line}


def load_hf_dataset(name_or_path: str, split: str):
    """A dataset by hub id, a local data file, a local data folder, or a `save_to_disk` folder."""
    import datasets

    path = Path(name_or_path)
    try:
        if path.is_file():
            builder = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(path.suffix)
            if builder is None:
                raise InputError(f"{path}: unsupported data file type '{path.suffix}' (use .jsonl, .json, .csv or .parquet)")
            return datasets.load_dataset(builder, data_files=str(path), split=split)
        if (path / "dataset_info.json").is_file() or (path / "state.json").is_file():
            loaded = datasets.load_from_disk(str(path))
            return loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        return datasets.load_dataset(name_or_path, split=split)
    except InputError:
        raise
    except Exception as error:  # datasets raises many types: hub, network, file, split errors
        raise InputError(f"{name_or_path}: could not load dataset split '{split}': {error}") from None


def hf_rows(dataset, name: str) -> Rows:
    for number, row in enumerate(dataset, start=1):
        yield f"{name} row {number}", row


def hf_converter(columns: list[str], options: PrepareSettings, name: str) -> Converter:
    """The seed's hub datasets are recognised by their columns; anything else needs --text-field."""
    if options.text_field:
        return generic_converter("hf", options.text_field, options.group_field)
    if {"intent", "rewritten_intent", "question_id"} <= set(columns):  # codeparrot/conala-mined-curated
        return convert_conala
    if "Question" in columns:  # keivalya/MedQuAD-MedicalQnADataset
        return generic_converter("medquad", "Question", options.group_field)
    raise InputError(f"{name}: columns are {sorted(columns)}; pass --text-field to say which holds the query")


Opener = Callable[[str, PrepareSettings, RejectLog], tuple[Rows, Converter]]


@dataclass(frozen=True)
class Source:
    open: Opener  # input path or id -> its rows and the converter for them
    domain: str | None  # the domain its queries belong to, where the source says


def _known(read: Callable[[Path, PrepareSettings, RejectLog], Rows], convert: Converter) -> Opener:
    return lambda path, options, rejects: (read(Path(path), options, rejects), convert)


def _generic(name: str, read: Callable[[Path, PrepareSettings, RejectLog], Rows], default_field: str | None) -> Opener:
    def open_generic(path: str, options: PrepareSettings, rejects: RejectLog) -> tuple[Rows, Converter]:
        text_field = options.text_field or default_field
        if text_field is None:
            raise InputError(f"--source {name} needs --text-field (the field that holds the query)")
        return read(Path(path), options, rejects), generic_converter(name, text_field, options.group_field)

    return open_generic


def _open_hf(name: str, options: PrepareSettings, rejects: RejectLog) -> tuple[Rows, Converter]:
    dataset = load_hf_dataset(name, options.hf_split)
    return hf_rows(dataset, name), hf_converter(list(dataset.column_names), options, name)


def _jsonl(path: Path, options: PrepareSettings, rejects: RejectLog) -> Rows:
    return iter_json_lines(path, options.on_error, rejects)


def _plain(reader: Callable[[Path], Rows]) -> Callable[[Path, PrepareSettings, RejectLog], Rows]:
    return lambda path, options, rejects: reader(path)


SOURCES: dict[str, Source] = {
    "conala": Source(_known(_plain(json_array_rows), convert_conala), "programming"),
    "staqc": Source(_known(_jsonl, convert_staqc), "programming"),
    "cosqa": Source(_known(_jsonl, convert_cosqa), "programming"),
    "medquad": Source(_known(_jsonl, convert_medquad), "medical"),
    "mqp": Source(_known(_jsonl, convert_mqp), "medical"),
    "rqe": Source(_known(_jsonl, convert_rqe), "medical"),
    "meqsum": Source(_known(_jsonl, convert_meqsum), "medical"),
    "stsb": Source(_known(_plain(lambda path: tsv_rows(path, STSB_COLUMNS)), convert_stsb), "general"),
    "mrpc": Source(_known(_plain(tsv_rows), convert_mrpc), "general"),
    "jsonl": Source(_generic("jsonl", _jsonl, None), None),
    "csv": Source(_generic("csv", _plain(csv_rows), None), None),
    "text": Source(_generic("text", _plain(text_rows), "text"), None),
    "hf": Source(_open_hf, None),
}


def load_source(options: PrepareSettings, rejects: RejectLog) -> SourceData:
    """Read every row of `options.input` with source `options.source`'s reader and converter."""
    rows, convert = SOURCES[options.source].open(options.input, options, rejects)
    data = SourceData()
    for where, row in rows:
        data.rows_read += 1
        try:
            convert(row, data)
        except RowError as error:
            if options.on_error == "fail":
                raise InputError(f"{where}: {error}") from None
            rejects.add(where, str(error), row)
    return data
