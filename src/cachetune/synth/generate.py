"""`cachetune generate`: training data from real queries with an instruct LLM.

For each query the LLM writes paraphrases (same intent) and look-alike questions with another intent
(hard negatives), under a JSON schema. What survives the filters becomes triplets: one row per
(query, paraphrase, negative) combination, so 3 paraphrases x 2 negatives give up to 6 rows, each
with `source` = backend:model:prompt-version. With `negatives=0` the LLM writes paraphrases only and each
becomes a label-1 pair (query, paraphrase): the negatives then come from `cachetune mine`, from real
queries, which are more often truly different than a small LLM's. Progress is committed per query
(see journal.py).
"""

import time
import zlib
from collections import Counter
from pathlib import Path

from cachetune.errors import BackendError, InputError
from cachetune.records import Pair, Query, RejectLog, Triplet, read_records, rejects_path, write_json
from cachetune.synth.backends import make_backend
from cachetune.synth.backends.base import Backend, Completion, Request
from cachetune.synth.filters import filter_texts, parse_output
from cachetune.synth.journal import Journal
from cachetune.synth.prompts import Prompt, load_prompt, output_schema
from cachetune.synth.settings import GenerateSettings
from cachetune.text import seeded_order


def planned_queries(settings: GenerateSettings) -> list[Query]:
    """Every input's queries in a seeded order: the first `max_queries` are a sample, and a larger one contains it."""
    rejects = RejectLog()
    queries: dict[str, Query] = {}
    for path in settings.input:
        for query in read_records(path, Query, settings.on_error, rejects):
            if query.id in queries:
                raise InputError(f"{path}: query id '{query.id}' appears twice; ids must be unique to resume safely")
            queries[query.id] = query
    if rejects:
        rejects.write(rejects_path(settings.output))
    if not queries:
        raise InputError(f"{', '.join(map(str, settings.input))}: no queries")
    return [queries[key] for key in seeded_order(list(queries), settings.seed)[: settings.max_queries]]


def generate(settings: GenerateSettings, on_progress=None) -> dict:
    """Generate (or finish generating) triplets, or pairs with `negatives=0`.

    Args:
        settings: the stage's settings.
        on_progress: called as `on_progress(done, total)` after each batch of queries.

    Returns:
        The report, also written to generate_report.json beside the output.

    Raises:
        InputError: the queries cannot be read, or the output exists and `resume` is not set.
        ModelError: the GGUF model cannot be found.
        BackendError: the backend failed after its retries; the queries done so far are kept.
    """
    queries = planned_queries(settings)
    Journal.check(settings.output, settings.resume)
    backend = make_backend(settings, prompt_tokens=1152)  # the few-shot turns (~500 tokens), the query, the answer
    journal = Journal(settings.output, settings.resume)
    prompts: dict[str, Prompt] = {}
    started = time.time()
    pending = [query for query in queries if query.id not in journal.done]
    try:
        for start in range(0, len(pending), settings.batch_size):
            batch = pending[start : start + settings.batch_size]
            batch_started = time.time()
            try:
                results = _generate_batch(backend, batch, prompts, settings)
            except BackendError as error:
                done = len(journal.done)
                raise BackendError(
                    f"{backend.name} failed: {error}. {done} of {len(queries)} queries are done and kept in {settings.output}; "
                    "rerun with --resume to finish."
                ) from None
            seconds = (time.time() - batch_started) / len(batch)
            for query, (rows, details) in zip(batch, results):
                journal.commit(query.id, rows, seconds=round(seconds, 3), **details)
            if on_progress:
                on_progress(len(journal.done), len(queries))
    finally:
        journal.close()
        backend.close()
    report = _report(settings, backend, prompts, journal, len(queries), time.time() - started)
    write_json(Path(settings.output).parent / "generate_report.json", report)
    return report


def _generate_batch(backend: Backend, batch: list[Query], prompts: dict[str, Prompt], settings: GenerateSettings) -> list:
    schema = output_schema(settings.paraphrases, settings.negatives)
    domain_of = {query.id: settings.domain or query.domain for query in batch}
    for domain in set(domain_of.values()) - prompts.keys():
        prompts[domain] = load_prompt(domain)

    def ask(queries: list[Query], attempt: int) -> list[Completion]:
        requests = [
            Request(
                prompts[domain_of[q.id]].messages(q.text, settings.paraphrases, settings.negatives),
                schema,
                settings.max_tokens,
                settings.temperature,
                settings.seed + attempt * 100_003 + zlib.crc32(q.id.encode()) % 100_000,
            )
            for q in queries
        ]
        return backend.complete(requests)

    completions = ask(batch, 0)
    attempts = [[completion] for completion in completions]
    for attempt in range(1, settings.parse_retries + 1):
        again = [i for i, tries in enumerate(attempts) if parse_output(tries[-1].text) is None]
        if not again:
            break
        for i, completion in zip(again, ask([batch[i] for i in again], attempt)):
            attempts[i].append(completion)
    return [_rows(query, tries, prompts[domain_of[query.id]], backend, settings) for query, tries in zip(batch, attempts)]


def _rows(query: Query, tries: list[Completion], prompt: Prompt, backend: Backend, settings: GenerateSettings) -> tuple[list, dict]:
    tokens = {"prompt_tokens": sum(c.prompt_tokens for c in tries), "completion_tokens": sum(c.completion_tokens for c in tries)}
    parsed = parse_output(tries[-1].text)
    if parsed is None:
        return [], {"rejects": {"unparseable": 1}, "attempts": len(tries), **tokens}
    kept = filter_texts(query.text, *parsed)
    source = f"{backend.name}:{backend.model}:{prompt.version}"
    domain = settings.domain or query.domain
    if settings.negatives == 0:
        rows = [Pair(query1=query.text, query2=positive, label=1, domain=domain, source=source) for positive in kept.paraphrases]
    else:
        rows = [
            Triplet(anchor=query.text, positive=positive, hard_negative=negative, domain=domain, source=source)
            for positive in kept.paraphrases
            for negative in kept.negatives
        ]
    return rows, {"rejects": dict(kept.rejects), "attempts": len(tries), **tokens}


def _report(settings: GenerateSettings, backend: Backend, prompts: dict, journal: Journal, total: int, wall: float) -> dict:
    rejects: Counter = Counter()
    for entry in journal.entries:
        rejects.update(entry.get("rejects", {}))
    completion_tokens = sum(entry["completion_tokens"] for entry in journal.entries)
    generation_seconds = sum(entry["seconds"] for entry in journal.entries)
    return {
        "output": str(settings.output),
        "backend": backend.name,
        "model": backend.model,
        "prompt_versions": sorted(prompt.version for prompt in prompts.values()),
        "queries": total,
        "queries_done": len(journal.done),
        "queries_without_rows": sum(1 for entry in journal.entries if entry["rows"] == 0),
        "rows": sum(entry["rows"] for entry in journal.entries),
        "rows_layout": (
            f"one per (query, paraphrase, negative): up to {settings.paraphrases * settings.negatives} per query"
            if settings.negatives
            else f"one label-1 pair per (query, paraphrase): up to {settings.paraphrases} per query"
        ),
        "rejects": dict(sorted(rejects.items())),
        "retried_queries": sum(1 for entry in journal.entries if entry.get("attempts", 1) > 1),
        "prompt_tokens": sum(entry["prompt_tokens"] for entry in journal.entries),
        "completion_tokens": completion_tokens,
        "generation_seconds": round(generation_seconds, 1),
        "completion_tokens_per_second": round(completion_tokens / generation_seconds, 2) if generation_seconds else None,
        "queries_per_minute": round(60 * len(journal.entries) / generation_seconds, 2) if generation_seconds else None,
        "wall_seconds_this_run": round(wall, 1),
        "settings": settings.record(),
    }
