"""`cachetune generate` on the real 0.5B model, through llama.cpp in-process and through an OpenAI-compatible server."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from servers import ScriptedServer

from cachetune.errors import BackendError, InputError
from cachetune.records import Pair, Query, Triplet, read_records, write_jsonl
from cachetune.synth.backends.base import Request
from cachetune.synth.backends.openai import OpenAIBackend
from cachetune.synth.generate import generate
from cachetune.synth.journal import progress_path
from cachetune.synth.prompts import load_prompt, output_schema
from cachetune.synth.settings import GenerateSettings
from cachetune.text import seeded_order

pytestmark = pytest.mark.llm  # the packaged 0.5B GGUF generates


@pytest.fixture(scope="module")
def queries(conala_prepared, tmp_path_factory) -> Path:
    rows = read_records(conala_prepared / "queries.train.jsonl", Query)[:9]
    path = tmp_path_factory.mktemp("queries") / "queries.jsonl"
    write_jsonl(path, rows)
    return path


def check_output(output: Path, queries: Path, expected_queries: int) -> list[Triplet]:
    texts = {q.id: q.text for q in read_records(queries, Query)}
    triplets = read_records(output, Triplet)
    entries = [json.loads(line) for line in progress_path(output).read_text().splitlines()]
    # every query of the seeded sample exactly once
    assert sorted(e["id"] for e in entries) == sorted(seeded_order(list(texts), 42)[:expected_queries])
    assert len(triplets) == sum(e["rows"] for e in entries)
    assert Counter((t.anchor, t.positive, t.hard_negative) for t in triplets).most_common(1)[0][1] == 1
    by_anchor = Counter(t.anchor for t in triplets)
    for entry in entries:
        assert by_anchor[texts[entry["id"]]] == entry["rows"]
    for t in triplets:
        assert t.anchor in texts.values() and t.positive != t.anchor and t.hard_negative not in (t.anchor, t.positive)
    return triplets


def test_llama_cpp_backend_turns_real_queries_into_triplets(queries, tmp_path):
    output = tmp_path / "triplets.jsonl"
    report = generate(GenerateSettings(input=queries, output=output, max_queries=6, batch_size=3))
    triplets = check_output(output, queries, 6)
    assert len(triplets) >= 12  # most of 6 x 6 survive the filters with the 0.5B model
    assert {t.source for t in triplets} == {"llama-cpp:qwen2.5-coder-0.5b-instruct-q4_k_m:programming-v2"}
    assert report["queries_done"] == 6 and report["rows"] == len(triplets)
    assert report["completion_tokens"] > 0 and report["completion_tokens_per_second"] > 0
    assert json.loads((tmp_path / "generate_report.json").read_text())["rejects"] == report["rejects"]
    with pytest.raises(InputError, match="already exists; pass --resume"):
        generate(GenerateSettings(input=queries, output=output))


def test_paraphrases_only_are_written_as_same_intent_pairs(queries, tmp_path):
    output = tmp_path / "pairs.jsonl"
    report = generate(GenerateSettings(input=queries, output=output, max_queries=3, batch_size=3, negatives=0, max_tokens=160))
    pairs = read_records(output, Pair)
    anchors = {q.text for q in read_records(queries, Query)}
    assert len(pairs) >= 6 and report["rows"] == len(pairs)  # most of 3 x 3 survive
    assert all(p.label == 1 and p.query1 in anchors and p.query2 != p.query1 for p in pairs)
    assert len({p.query1 for p in pairs}) == 3 and report["rows_layout"].startswith("one label-1 pair")


def test_killed_run_resumes_with_every_query_exactly_once(queries, tmp_path):
    output = tmp_path / "triplets.jsonl"
    command = [sys.executable, "-m", "cachetune", "generate", "--input", str(queries), "--output", str(output), "--batch-size", "3"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        log = progress_path(output)
        if log.exists() and len(log.read_text().splitlines()) >= 3:
            break
        time.sleep(0.1)
    assert process.poll() is None, "generation ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    committed = len(progress_path(output).read_text().splitlines())
    assert 3 <= committed < 9
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    check_output(output, queries, 9)
    report = json.loads((tmp_path / "generate_report.json").read_text())
    assert report["queries_done"] == 9 and report["queries"] == 9


def test_openai_backend_against_a_real_llama_cpp_server(queries, tmp_path, llama_server):
    output = tmp_path / "triplets.jsonl"
    report = generate(
        GenerateSettings(
            input=queries,
            output=output,
            backend="openai",
            base_url=llama_server.url,
            model="qwen",
            max_queries=2,
            batch_size=2,
            concurrency=2,
        )
    )
    triplets = check_output(output, queries, 2)
    assert triplets and {t.source for t in triplets} == {"openai:qwen:programming-v2"}
    assert report["prompt_tokens"] > 0


class FailingServer(ScriptedServer):
    """An OpenAI-compatible endpoint that answers `good` requests properly, then fails as `mode` says."""

    def __init__(self, mode: str, good: int = 0) -> None:
        answer = json.dumps(
            {
                "paraphrases": ["reverse a python list", "python list reversed", "flip the order of a list"],
                "negatives": ["reverse a string in python", "sort a list in python"],
            }
        )
        completion = json.dumps(
            {"choices": [{"message": {"content": answer}}], "usage": {"prompt_tokens": 10, "completion_tokens": 20}}
        ).encode()

        self.good = good  # a test may raise it: the server is back

        def respond(number: int, request: bytes) -> tuple[int, bytes]:
            if number <= self.good:
                return 200, completion
            if mode == "error":
                return 500, b'{"error": "model crashed"}'
            if mode == "garbage":
                return 200, b"<html>proxy error</html>"
            time.sleep(1.0)  # slow
            return 200, completion

        super().__init__(respond)


@pytest.mark.parametrize(("mode", "message"), [("error", "HTTP 500"), ("garbage", "not a chat completion"), ("slow", "ReadTimeout")])
def test_openai_backend_retries_then_names_the_last_error(mode, message):
    server = FailingServer(mode)
    backend = OpenAIBackend(server.url, "m", timeout=0.3, retries=2, backoff=0.01)
    request = Request(load_prompt("programming").messages("reverse a list", 3, 2), output_schema(3, 2), 64, 0.7, 1)
    with pytest.raises(BackendError, match=f"3 attempts failed; last: {message}"):
        backend.complete([request])
    assert server.requests == 3
    server.shutdown()


def test_server_failure_mid_run_keeps_the_work_done(queries, tmp_path):
    server = FailingServer("error", good=4)
    output = tmp_path / "triplets.jsonl"
    settings = GenerateSettings(
        input=queries, output=output, backend="openai", base_url=server.url, model="m", batch_size=2, concurrency=1, retries=1
    )
    with pytest.raises(BackendError, match=r"openai failed: .*HTTP 500.* 4 of 9 queries are done and kept in .*rerun with --resume"):
        generate(settings)
    assert len(progress_path(output).read_text().splitlines()) == 4
    server.good = 10**6  # the server is back
    generate(settings.model_copy(update={"resume": True}))
    check_output(output, queries, 9)
    server.shutdown()


def test_unreachable_server_fails_with_a_clear_message(queries, tmp_path, free_port):
    settings = GenerateSettings(
        input=queries, output=tmp_path / "t.jsonl", backend="openai", base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", retries=1
    )
    with pytest.raises(BackendError, match="ConnectError.* 0 of 9 queries are done"):
        generate(settings)
    assert os.path.getsize(tmp_path / "t.jsonl") == 0
