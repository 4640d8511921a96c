"""`cachetune judge`: the LLM as a judge of "do these two questions ask the same thing?".

Mined negatives are the nearest other queries of a log, and some of them ask the same thing as their anchor: a
false negative teaches the model to push a true duplicate away. On triplets the judge reads each distinct
(anchor, negative) and keeps its triplets only when it answers "different". On labelled pairs it reads
(query1, query2) and is scored against the labels (accuracy; precision and recall of "same"), which says whether
to trust it on triplets. Answers are JSON `{"same": true|false}` decoded under a schema; each item is committed
to a journal, so a killed run resumes with every item judged once.
"""

import json
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from cachetune.errors import BackendError, InputError
from cachetune.records import Pair, read_pairs_or_triplets, write_json
from cachetune.synth.backends import make_backend
from cachetune.synth.backends.base import Request
from cachetune.synth.journal import Journal
from cachetune.synth.settings import JudgeSettings
from cachetune.text import seeded_order

SCHEMA = {"type": "object", "properties": {"same": {"type": "boolean"}}, "required": ["same"], "additionalProperties": False}
PROMPT_TOKENS = 640  # the system text and six examples (~450 tokens) and two questions


@dataclass(frozen=True)
class JudgePrompt:
    version: str
    system: str
    examples: tuple[dict, ...]

    def messages(self, first: str, second: str) -> list[dict]:
        messages = [{"role": "system", "content": self.system.strip()}]
        for example in self.examples:
            messages += [
                {"role": "user", "content": _ask(example["first"], example["second"])},
                {"role": "assistant", "content": json.dumps({"same": example["same"]})},
            ]
        return [*messages, {"role": "user", "content": _ask(first, second)}]


def _ask(first: str, second: str) -> str:
    return f"First question: {first}\nSecond question: {second}\nDo they ask the same thing?"


def load_judge_prompt() -> JudgePrompt:
    data = yaml.safe_load(resources.files("cachetune.synth").joinpath("prompts", "judge.yaml").read_text())
    return JudgePrompt(data["version"], data["system"], tuple(data["examples"]))


def parse_verdict(text: str) -> bool | None:
    """True (same), False (different), or None when the answer is not the JSON asked for."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    verdict = value.get("same") if isinstance(value, dict) else None
    return verdict if isinstance(verdict, bool) else None


def judge(settings: JudgeSettings, on_progress=None) -> dict:
    """Judge every distinct pair of questions in `settings.input`; write what survives and a report.

    Returns:
        The report, also written to judge_report.json beside the output.

    Raises:
        InputError: unreadable input, or an existing output without `resume`.
        BackendError: the LLM failed after its retries; the items judged so far are kept.
    """
    kind, records = read_pairs_or_triplets(settings.input)
    if not records:
        raise InputError(f"{settings.input}: no records")
    rows_of: dict[str, list] = {}  # item id -> the records it decides
    question_of: dict[str, tuple[str, str]] = {}
    for record in records:
        first, second = (record.anchor, record.hard_negative) if kind == "triplets" else (record.query1, record.query2)
        item = f"{zlib.crc32(first.encode()):08x}{zlib.crc32(second.encode()):08x}-{len(first)}-{len(second)}"
        rows_of.setdefault(item, []).append(record)
        question_of[item] = (first, second)
    items = seeded_order(list(rows_of), settings.seed)[: settings.max_items]
    Journal.check(settings.output, settings.resume)
    prompt = load_judge_prompt()
    backend = make_backend(settings, prompt_tokens=PROMPT_TOKENS)
    journal = Journal(settings.output, settings.resume)
    started = time.time()
    pending = [item for item in items if item not in journal.done]
    try:
        for start in range(0, len(pending), settings.batch_size):
            batch = pending[start : start + settings.batch_size]
            requests = [
                Request(prompt.messages(*question_of[item]), SCHEMA, settings.max_tokens, settings.temperature, settings.seed)
                for item in batch
            ]
            try:
                completions = backend.complete(requests)
            except BackendError as error:
                raise BackendError(
                    f"{backend.name} failed: {error}. {len(journal.done)} of {len(items)} items are judged and kept in "
                    f"{settings.output}; rerun with --resume to finish."
                ) from None
            for item, completion in zip(batch, completions):
                same = parse_verdict(completion.text)
                kept = _kept(kind, rows_of[item], same)
                label = rows_of[item][0].label if kind == "pairs" else None
                journal.commit(
                    item, kept, same=same, label=label, records=len(rows_of[item]), completion_tokens=completion.completion_tokens
                )
            if on_progress:
                on_progress(len(journal.done), len(items))
    finally:
        journal.close()
        backend.close()
    report = _report(settings, kind, prompt, backend, journal, len(records), time.time() - started)
    write_json(Path(settings.output).parent / "judge_report.json", report)
    return report


def _kept(kind: str, records: list, same: bool | None) -> list:
    """Triplets: kept when the judge says different (an unreadable verdict keeps them); pairs: relabelled by it."""
    if kind == "triplets":
        return records if same is not True else []
    return [] if same is None else [Pair(**{**records[0].model_dump(), "label": int(same), "source": f"judge:{records[0].source}"})]


def _report(settings: JudgeSettings, kind: str, prompt: JudgePrompt, backend, journal: Journal, records: int, wall: float) -> dict:
    verdicts = Counter("unreadable" if e["same"] is None else "same" if e["same"] else "different" for e in journal.entries)
    report = {
        "input": str(settings.input),
        "kind": kind,
        "backend": backend.name,
        "model": backend.model,
        "prompt_version": prompt.version,
        "records": records,
        "items_judged": len(journal.entries),
        "verdicts": dict(verdicts),
        "rows_written": sum(e["rows"] for e in journal.entries),
        "wall_seconds_this_run": round(wall, 1),
        "settings": settings.record(),
    }
    if kind == "triplets":
        report["triplets_dropped_as_false_negatives"] = sum(e["records"] - e["rows"] for e in journal.entries)
    else:
        scored = [(e["same"], e["label"]) for e in journal.entries if e["same"] is not None]
        said_same = [label for same, label in scored if same]
        positives = sum(label for _, label in scored)
        report["agreement"] = {
            "pairs": len(scored),
            "accuracy": sum(int(same) == label for same, label in scored) / len(scored) if scored else None,
            "precision_of_same": sum(said_same) / len(said_same) if said_same else None,
            "recall_of_same": sum(int(same) for same, label in scored if label == 1) / positives if positives else None,
            "label_1_share": positives / len(scored) if scored else None,
        }
    return report
