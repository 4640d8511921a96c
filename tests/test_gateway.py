"""The OpenAI-compatible gateway, driven by the real `openai` client; the upstream is llama-cpp-python's server with
the packaged 0.5B GGUF on loopback (or a real HTTP server that fails, or nothing at all)."""

import json
import time

import httpx
import numpy as np
import openai
import pytest
import yaml
from servers import CacheService, LlamaServer, ScriptedServer, free_port

QUESTION = "What does the Python keyword yield do? Answer in one short sentence."
REWORDED = "What does the python keyword yield do? Answer in one short sentence"
OTHER = "What does the Python keyword lambda do? Answer in one short sentence."


def gateway_config(folder, base_url: str, **upstream) -> str:
    config = {
        "semantic_cache": {
            "domains": {"coding": {"similarity_threshold": 0.9}},
            "upstream": {"base_url": base_url, "model_domains": {"qwen": "coding"}, "timeout_seconds": 60, "retries": 1, **upstream},
        }
    }
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    server = LlamaServer(tmp_path_factory.mktemp("llama"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(llama, tmp_path_factory):
    service = CacheService(gateway_config(tmp_path_factory.mktemp("gateway"), llama.url))
    yield service
    service.stop()


def client_of(service, **options) -> openai.OpenAI:
    return openai.OpenAI(base_url=service.url + "/v1", api_key="unused", max_retries=0, **options)


def ask(client, content: str, **options):
    """(completion, cachetune headers) through the client's raw-response interface."""
    raw = client.chat.completions.with_raw_response.create(
        model="qwen", messages=[{"role": "user", "content": content}], temperature=0, max_tokens=48, **options
    )
    return raw.parse(), {k: v for k, v in raw.headers.items() if k.startswith("x-cachetune")}


def test_a_miss_is_answered_upstream_and_a_rewording_hits(gateway):
    client = client_of(gateway)
    first, headers = ask(client, QUESTION)
    assert headers["x-cachetune-cache"] == "miss" and headers["x-cachetune-domain"] == "coding"
    assert first.choices[0].message.content and first.choices[0].finish_reason == "stop"
    again, headers = ask(client, REWORDED)
    assert headers["x-cachetune-cache"] == "hit" and float(headers["x-cachetune-similarity"]) >= float(headers["x-cachetune-threshold"])
    assert again.choices[0].message.content == first.choices[0].message.content and again.id != first.id
    _, headers = ask(client, QUESTION, seed=7)  # another generation setting: another exact-match scope
    assert headers["x-cachetune-cache"] == "miss"


def test_streaming_is_relayed_then_replayed_from_the_cache(gateway):
    client = client_of(gateway)
    with client.chat.completions.with_streaming_response.create(
        model="qwen", messages=[{"role": "user", "content": OTHER}], temperature=0, max_tokens=48, stream=True
    ) as response:
        assert response.headers["x-cachetune-cache"] == "miss"
        chunks = list(response.parse())
    relayed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 3 and relayed  # token by token, as the upstream sent them
    time.sleep(0.5)  # stored after the final event
    with client.chat.completions.with_streaming_response.create(
        model="qwen", messages=[{"role": "user", "content": OTHER.rstrip(".")}], temperature=0, max_tokens=48, stream=True
    ) as response:
        assert response.headers["x-cachetune-cache"] == "hit"
        replayed = list(response.parse())
    assert all(c.object == "chat.completion.chunk" for c in replayed) and replayed[-1].choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in replayed if c.choices) == relayed
    plain, headers = ask(client, OTHER)  # a streamed answer serves a plain request too
    assert headers["x-cachetune-cache"] == "hit" and plain.choices[0].message.content == relayed


def test_tool_requests_bypass_and_no_store_skips_the_store(gateway):
    client = client_of(gateway)
    tools = [
        {"type": "function", "function": {"name": "now", "description": "the time", "parameters": {"type": "object", "properties": {}}}}
    ]
    _, headers = ask(client, QUESTION, tools=tools)
    assert headers["x-cachetune-cache"] == "bypass"
    fresh = "What does the Python keyword assert do? Answer in one short sentence."
    _, headers = ask(client, fresh, extra_headers={"Cache-Control": "no-store"})
    assert headers["x-cachetune-cache"] == "miss"
    _, headers = ask(client, fresh)
    assert headers["x-cachetune-cache"] == "miss"  # nothing was stored for it


def test_upstream_errors_pass_through_and_are_never_cached(tmp_path):
    error = {"error": {"message": "model crashed", "type": "server_error", "param": None, "code": None}}
    upstream = ScriptedServer(lambda number: (500, json.dumps(error).encode()))
    service = CacheService(gateway_config(tmp_path, upstream.url, retries=1, backoff_base_seconds=0.05))
    client = client_of(service)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError, match="model crashed"):
            ask(client, QUESTION)
    assert upstream.requests == 4  # each request tried twice (one retry), the second request not answered from a cache
    upstream.shutdown()
    service.stop()


def test_a_dead_upstream_fails_within_the_timeout(tmp_path):
    service = CacheService(
        gateway_config(tmp_path, f"http://127.0.0.1:{free_port()}/v1", timeout_seconds=2, retries=1, backoff_base_seconds=0.1)
    )
    client = client_of(service)
    started = time.time()
    with pytest.raises(openai.APIStatusError) as failure:
        ask(client, QUESTION)
    assert failure.value.status_code == 502 and "cannot be reached" in str(failure.value)
    assert time.time() - started < 5
    service.stop()


def test_embeddings_serve_a_second_library_the_domain_model(gateway):
    from langchain_openai import OpenAIEmbeddings

    from cachetune.models import load_model

    embedder = OpenAIEmbeddings(model="coding", base_url=gateway.url + "/v1", api_key="unused", check_embedding_ctx_length=False)
    texts = ["How do I reverse a list in Python?", "reverse a python list"]
    vectors = np.array(embedder.embed_documents(texts))
    expected = load_model(None).encode(texts, normalize_embeddings=True)  # the coding domain has no adapter here: the base
    assert vectors.shape == (2, 384) and np.allclose(np.einsum("ij,ij->i", vectors, expected), 1.0, atol=1e-4)
    assert np.dot(embedder.embed_query(texts[0]), vectors[0]) > 0.9999
    with pytest.raises(openai.NotFoundError, match="not a domain"):
        client_of(gateway).embeddings.create(model="legal", input="x")


FLIXORA = [
    {"role": "user", "content": "I have a Flixora subscription I barely use."},
    {"role": "assistant", "content": "It renews on the 14th at £10.99 a month. Do you want to cancel it?"},
    {"role": "user", "content": "Yes, cancel it."},
]
PULSEFIT = [
    {"role": "user", "content": "My PulseFit gym membership costs too much."},
    {"role": "assistant", "content": "It has a 30-day notice period. Do you want to cancel it?"},
    {"role": "user", "content": "Yes, cancel it."},
]
SMALL_TALK = [{"role": "user", "content": "Hi there!"}, {"role": "assistant", "content": "Hello! How can I help you today?"}]


def chat(client, messages):
    raw = client.chat.completions.with_raw_response.create(model="qwen", messages=messages, temperature=0, max_tokens=48)
    return raw.parse(), {k: v for k, v in raw.headers.items() if k.startswith("x-cachetune")}


def test_a_follow_up_is_never_served_another_conversations_answer_by_default(gateway):
    client = client_of(gateway)
    first, headers = chat(client, FLIXORA)
    assert headers["x-cachetune-cache"] == "miss"
    _, headers = chat(client, PULSEFIT)  # the same last message after other turns: its own answer, from upstream
    assert headers["x-cachetune-cache"] == "miss"
    again, headers = chat(client, SMALL_TALK + FLIXORA)  # the same turns, small talk aside
    assert headers["x-cachetune-cache"] == "hit" and again.choices[0].message.content == first.choices[0].message.content
    standalone = "What does the Python keyword nonlocal do? Answer in one short sentence."
    chat(client, [{"role": "user", "content": standalone}])
    _, headers = chat(client, FLIXORA[:2] + [{"role": "user", "content": standalone}])  # it needs no context: served after any
    assert headers["x-cachetune-cache"] == "hit"


def test_with_context_facts_a_follow_up_is_served_after_turns_that_agree_and_refused_after_a_changed_fact(llama, tmp_path):
    service = CacheService(gateway_config(tmp_path, llama.url, context="facts"))
    try:
        client = client_of(service)
        _, headers = chat(client, FLIXORA)
        assert headers["x-cachetune-cache"] == "miss"
        reworded = [{"role": "user", "content": "I'm paying for Flixora but hardly ever watch it."}, FLIXORA[1], FLIXORA[2]]
        _, headers = chat(client, reworded)
        assert headers["x-cachetune-cache"] == "hit"
        changed = [
            FLIXORA[0],
            {"role": "assistant", "content": "It renews on the 28th at £15.99 a month. Do you want to cancel it?"},
            FLIXORA[2],
        ]
        _, headers = chat(client, changed)
        assert headers["x-cachetune-cache"] == "miss" and ":context:numbers" in headers["x-cachetune-refused"]
    finally:
        service.stop()


def test_a_wrong_hit_reported_by_its_id_is_never_served_again_in_that_context(gateway):
    client = client_of(gateway)
    turns = [{"role": "user", "content": "My Flixora plan renews on the 3rd."}, {"role": "assistant", "content": "Noted. Anything else?"}]
    question = {"role": "user", "content": "What does the Python keyword assert do? Answer in one short sentence."}
    _, headers = chat(client, [*turns, {"role": "user", "content": "Can I pause it instead?"}])
    assert headers["x-cachetune-cache"] == "miss"
    _, headers = chat(client, [*turns, {"role": "user", "content": "Can I pause it instead?"}])
    assert headers["x-cachetune-cache"] == "hit" and headers["x-cachetune-tier"] == "exact"
    token = headers["x-cachetune-id"]
    chat(client, [question])
    _, standalone = chat(client, [question])  # an entry of another partition: the feedback must leave it
    assert standalone["x-cachetune-cache"] == "hit"

    def feedback(id, tenant=""):
        return httpx.post(gateway.url + "/v1/cache/feedback", json={"domain": "coding", "id": id, "correct": False, "tenant": tenant})

    assert feedback(token, tenant="other").json() == {"deleted": 0}  # another tenant's partition of that scope holds nothing
    assert feedback("7@not-a-scope").status_code == 422
    assert feedback(token).json() == {"deleted": 1}
    _, headers = chat(client, [*turns, {"role": "user", "content": "Can I pause it instead?"}])
    assert headers["x-cachetune-cache"] == "miss"  # the wrong answer is gone; upstream answers and a fresh one is stored
    _, headers = chat(client, [question])
    assert headers["x-cachetune-cache"] == "hit"
