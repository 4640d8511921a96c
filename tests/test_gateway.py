"""The OpenAI-compatible gateway, driven by the real `openai` client. The gateway runs in process (`create_app` behind
FastAPI's TestClient, given to the client as its httpx client); its upstream is the session's llama.cpp server with
the packaged 0.5B GGUF on loopback, a transport that fails, or an address where nothing listens. One test runs
`cachetune serve` as a process end to end."""

import time

import httpx
import numpy as np
import openai
import pytest
import yaml
from servers import CacheService, free_port

from cachetune.cache_config import CacheConfig

pytestmark = [pytest.mark.servers, pytest.mark.llm]  # the session's llama.cpp server as the upstream

QUESTION = "What does the Python keyword yield do? Answer in one short sentence."
REWORDED = "What does the python keyword yield do? Answer in one short sentence"
OTHER = "What does the Python keyword lambda do? Answer in one short sentence."


def gateway_config(base_url: str, onnx_folder, **upstream) -> CacheConfig:
    upstream = {"base_url": base_url, "model_domains": {"qwen": "coding"}, "timeout_seconds": 60, "retries": 1, **upstream}
    return CacheConfig.model_validate(
        {"domains": {"coding": {"similarity_threshold": 0.9}}, "upstream": upstream, "onnx_cache": str(onnx_folder)}
    )


@pytest.fixture(scope="module")
def gateway(llama_server, serve_app, onnx_folder):
    with serve_app(gateway_config(llama_server.url, onnx_folder)) as client:
        yield client


def client_of(app_client, **options) -> openai.OpenAI:
    """The openai client talking to an in-process app (its httpx client), or to a URL."""
    if isinstance(app_client, str):
        return openai.OpenAI(base_url=app_client + "/v1", api_key="unused", max_retries=0, **options)
    return openai.OpenAI(base_url="http://testserver/v1", api_key="unused", max_retries=0, http_client=app_client, **options)


def ask(client, content: str, **options):
    """(completion, cachetune headers) through the client's raw-response interface."""
    raw = client.chat.completions.with_raw_response.create(
        model="qwen", messages=[{"role": "user", "content": content}], temperature=0, max_tokens=48, **options
    )
    return raw.parse(), {k: v for k, v in raw.headers.items() if k.startswith("x-cachetune")}


def test_the_gateway_process_answers_a_miss_upstream_and_a_rewording_from_the_cache(llama_server, tmp_path, onnx_folder):
    config = {"semantic_cache": gateway_config(llama_server.url, onnx_folder).model_dump(mode="json", exclude_none=True)}
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(config))
    service = CacheService(tmp_path / "gateway.yaml")
    try:
        client = client_of(service.url)
        first, headers = ask(client, "What does the Python keyword del do? Answer in one short sentence.")
        assert headers["x-cachetune-cache"] == "miss" and first.choices[0].message.content
        again, headers = ask(client, "What does the python keyword del do? Answer in one short sentence")
        assert headers["x-cachetune-cache"] == "hit" and again.choices[0].message.content == first.choices[0].message.content
    finally:
        service.stop()


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


def test_upstream_errors_pass_through_and_are_never_cached(serve_app, onnx_folder):
    error = {"error": {"message": "model crashed", "type": "server_error", "param": None, "code": None}}
    requests = []

    def crashed(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(500, json=error)

    config = gateway_config("http://upstream.invalid/v1", onnx_folder, retries=1, backoff_base_seconds=0.05)
    with serve_app(config, upstream_transport=httpx.MockTransport(crashed)) as app_client:
        client = client_of(app_client)
        for _ in range(2):
            with pytest.raises(openai.InternalServerError, match="model crashed"):
                ask(client, QUESTION)
    assert len(requests) == 4  # each request tried twice (one retry), the second request not answered from a cache
    assert all(r.url == "http://upstream.invalid/v1/chat/completions" for r in requests)


def test_a_dead_upstream_fails_within_the_timeout(serve_app, onnx_folder):
    config = gateway_config(f"http://127.0.0.1:{free_port()}/v1", onnx_folder, timeout_seconds=2, retries=1, backoff_base_seconds=0.1)
    with serve_app(config) as app_client:
        started = time.time()
        with pytest.raises(openai.APIStatusError) as failure:
            ask(client_of(app_client), QUESTION)
    assert failure.value.status_code == 502 and "cannot be reached" in str(failure.value)
    assert time.time() - started < 5


def test_embeddings_serve_a_second_library_the_domain_model(gateway):
    from langchain_openai import OpenAIEmbeddings

    from cachetune.models import load_model

    embedder = OpenAIEmbeddings(
        model="coding", base_url="http://testserver/v1", api_key="unused", check_embedding_ctx_length=False, http_client=gateway
    )
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
    _, headers = chat(client, FLIXORA[:2] + [{"role": "user", "content": standalone}])
    # by default no rule decides that a message after other turns stands alone: it is keyed by its conversation
    assert headers["x-cachetune-cache"] == "miss"


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
        return gateway.post("/v1/cache/feedback", json={"domain": "coding", "id": id, "correct": False, "tenant": tenant})

    assert feedback(token, tenant="other").status_code == 404  # another tenant's partition of that scope holds nothing
    assert feedback("7@not-a-scope").status_code == 422
    assert feedback(token).json() == {"deleted": 1}
    _, headers = chat(client, [*turns, {"role": "user", "content": "Can I pause it instead?"}])
    assert headers["x-cachetune-cache"] == "miss"  # the wrong answer is gone; upstream answers and a fresh one is stored
    _, headers = chat(client, [question])
    assert headers["x-cachetune-cache"] == "hit"
