"""`cachetune generate`: training triplets from real queries with an instruct LLM.

For each query the LLM writes paraphrases (same intent) and look-alike questions with another intent
(hard negatives), under a JSON schema. What survives the filters becomes triplets: one row per
(query, paraphrase, negative) combination, so 3 paraphrases x 2 negatives give up to 6 rows, each
with `source` = backend:model:prompt-version. Progress is committed per query (see journal.py).
"""

import time
import zlib
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from cachetune.records import OnError, Query, RecordError, RejectLog, Triplet, read_records, rejects_path, write_json
from cachetune.synth.backends.base import Backend, BackendError, Completion, Request
from cachetune.synth.filters import filter_texts, parse_output
from cachetune.synth.journal import Journal
from cachetune.synth.prompts import Prompt, load_prompt, output_schema

BackendName = Literal["llama-cpp", "openai", "vllm"]


@dataclass(frozen=True)
class GenerateSettings:
    input: Path
    output: Path
    domain: str | None = None  # default: each query's own domain
    backend: BackendName = "llama-cpp"
    model: str | None = None
    paraphrases: int = 3
    negatives: int = 2
    batch_size: int = 32
    tensor_parallel: int = 1
    base_url: str | None = None
    api_key_env: str | None = None
    concurrency: int = 8
    timeout: float = 120.0  # openai: seconds per request
    retries: int = 4  # openai: attempts after the first, with exponential backoff
    max_queries: int | None = None
    resume: bool = False
    seed: int = 42
    temperature: float = 0.7
    max_tokens: int = 384
    parse_retries: int = 1  # an answer that is not the JSON asked for is asked again, with another seed
    on_error: OnError = "fail"


class GenerateError(RuntimeError):
    """Generation stopped part-way; the message says how far it got and that the work is kept."""


def make_backend(settings: GenerateSettings) -> Backend:
    """The backend, with its model found and checked before any query is sent."""
    if settings.backend == "llama-cpp":
        from cachetune.synth.backends.llama_cpp import LlamaCppBackend
        from cachetune.synth.gguf import resolve_gguf

        # A sequence holds the few-shot prompt (~500 tokens), the query and the answer.
        return LlamaCppBackend(resolve_gguf(settings.model), parallel=settings.batch_size, sequence_length=1152 + settings.max_tokens)
    if settings.backend == "openai":
        from cachetune.synth.backends.openai import OpenAIBackend

        if not settings.base_url or not settings.model:
            raise RecordError("--backend openai needs --base-url and --model")
        return OpenAIBackend(
            settings.base_url, settings.model, settings.api_key_env, settings.concurrency, settings.timeout, settings.retries
        )
    from cachetune.synth.backends.vllm import VllmBackend

    if not settings.model:
        raise RecordError("--backend vllm needs --model (a hub id or a local folder)")
    return VllmBackend(settings.model, settings.tensor_parallel, settings.seed)


def _check(settings: GenerateSettings) -> list[Query]:
    if settings.paraphrases < 1 or settings.negatives < 1:
        raise RecordError("--paraphrases and --negatives must be at least 1")
    if settings.batch_size < 1:
        raise RecordError("--batch-size must be at least 1")
    rejects = RejectLog()
    queries = read_records(settings.input, Query, settings.on_error, rejects)
    if rejects:
        rejects.write(rejects_path(settings.output))
    if not queries:
        raise RecordError(f"{settings.input}: no queries")
    seen = set()
    for query in queries:
        if query.id in seen:
            raise RecordError(f"{settings.input}: query id '{query.id}' appears twice; ids must be unique to resume safely")
        seen.add(query.id)
    return queries[: settings.max_queries] if settings.max_queries else queries


def generate(settings: GenerateSettings, on_progress=None) -> dict:
    """Generate (or finish generating) triplets; returns the report written beside the output."""
    queries = _check(settings)
    Journal.check(settings.output, settings.resume)
    backend = make_backend(settings)
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
                raise GenerateError(
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
    settings_record = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()}
    settings_record.pop("api_key_env", None)
    return {
        "output": str(settings.output),
        "backend": backend.name,
        "model": backend.model,
        "prompt_versions": sorted(prompt.version for prompt in prompts.values()),
        "queries": total,
        "queries_done": len(journal.done),
        "queries_without_rows": sum(1 for entry in journal.entries if entry["rows"] == 0),
        "rows": sum(entry["rows"] for entry in journal.entries),
        "rows_layout": f"one per (query, paraphrase, negative): up to {settings.paraphrases * settings.negatives} per query",
        "rejects": dict(sorted(rejects.items())),
        "retried_queries": sum(1 for entry in journal.entries if entry.get("attempts", 1) > 1),
        "prompt_tokens": sum(entry["prompt_tokens"] for entry in journal.entries),
        "completion_tokens": completion_tokens,
        "generation_seconds": round(generation_seconds, 1),
        "completion_tokens_per_second": round(completion_tokens / generation_seconds, 2) if generation_seconds else None,
        "queries_per_minute": round(60 * len(journal.entries) / generation_seconds, 2) if generation_seconds else None,
        "wall_seconds_this_run": round(wall, 1),
        "settings": settings_record,
    }
