"""One set of checks on every path: the gateway keeps the cache API's limits, every invalidation reaches the answers
the gateway learned, and feedback counts each served hit once, for entries of the caller's tenant, with the
similarity it was served at wherever it was served. The apps run in process; the upstream answers each chat with
its own text; two "replicas" are two caches on one real Redis."""

import json
import uuid

import httpx
import pytest
from traffic import echo_upstream
from typer.testing import CliRunner

from cachetune.cache_config import CacheConfig
from cachetune.cli import app

QUESTION = "What does the Python keyword yield do? Answer in one short sentence."
REWORDED = "What does the python keyword yield do? Answer in one short sentence"
OTHER = "How do I merge two dicts in Python?"


def gateway_config(onnx_folder, **settings) -> CacheConfig:
    upstream = {"base_url": "http://upstream.invalid/v1", "model_domains": {"qwen": "coding"}}
    domains = {"coding": {"similarity_threshold": 0.9}}
    return CacheConfig.model_validate({"domains": domains, "upstream": upstream, "onnx_cache": str(onnx_folder), **settings})


def ask(client, content: str, tenant: str = "acme") -> httpx.Response:
    body = {"model": "qwen", "messages": [{"role": "user", "content": content}]}
    return client.post("/v1/chat/completions", json=body, headers={"x-cachetune-tenant": tenant})


def test_the_gateway_keeps_the_apis_limits_with_the_same_status_and_message(serve_app, onnx_folder):
    limits = {"max_prompt_chars": 500, "max_response_chars": 400}
    with serve_app(gateway_config(onnx_folder, limits=limits), upstream_transport=httpx.MockTransport(echo_upstream)) as client:
        long = "x " * 300
        api = client.post("/v1/cache/check", json={"prompt": long, "domain": "coding"})
        gateway = ask(client, long)
        assert api.status_code == gateway.status_code == 422
        assert api.json()["detail"] == gateway.json()["error"]["message"] == "prompt: 600 characters, over the limit of 500"
        # the upstream's answer to a 300-character question is over max_response_chars: relayed, never stored
        wordy = "y" * 300
        assert ask(client, wordy).status_code == 200 and ask(client, wordy).headers["x-cachetune-cache"] == "miss"
        assert ask(client, "short?").headers["x-cachetune-cache"] == "miss" and ask(client, "short?").headers["x-cachetune-cache"] == "hit"


@pytest.mark.parametrize("form", ["all", "prompt", "gateway id", "entry id"])
def test_every_invalidation_removes_an_answer_the_gateway_learned(form, serve_app, onnx_folder):
    with serve_app(gateway_config(onnx_folder), upstream_transport=httpx.MockTransport(echo_upstream)) as client:
        ask(client, QUESTION)
        ask(client, OTHER, tenant="beta")  # another tenant's: never touched
        hit = ask(client, REWORDED)
        assert hit.headers["x-cachetune-cache"] == "hit"
        token = hit.headers["x-cachetune-id"]
        body = {
            "all": {"all": True},
            "prompt": {"prompt": REWORDED},
            "gateway id": {"ids": [token]},
            "entry id": {"ids": [int(token.split("@")[0])]},
        }[form]
        deleted = client.post("/v1/cache/invalidate", json={"domain": "coding", "tenant": "acme", **body})
        assert deleted.status_code == 200 and deleted.json() == {"deleted": 1}
        assert ask(client, REWORDED).headers["x-cachetune-cache"] == "miss"
        assert ask(client, OTHER, tenant="beta").headers["x-cachetune-cache"] == "hit"


@pytest.mark.servers
def test_feedback_counts_each_wrong_hit_once_whatever_replica_it_reaches(redis_server, serve_app, onnx_folder, tmp_path):
    store = {"backend_type": "redis", "redis": {"url": redis_server.url, "key_prefix": f"f{uuid.uuid4().hex[:8]}:"}}
    log = tmp_path / "feedback.jsonl"
    config = gateway_config(onnx_folder, feedback_log=str(log), **store)
    transport = httpx.MockTransport(echo_upstream)
    with serve_app(config, upstream_transport=transport) as first, serve_app(config, upstream_transport=transport) as second:
        ask(first, QUESTION)
        ask(first, OTHER)
        served = [ask(first, REWORDED), ask(second, "How can I merge two dicts in Python?")]
        assert [r.headers["x-cachetune-cache"] for r in served] == ["hit", "hit"]
        tokens = [r.headers["x-cachetune-id"] for r in served]

        def report(client, id, tenant="acme"):
            body = {"domain": "coding", "id": id, "correct": False} | ({"tenant": tenant} if tenant is not None else {})
            return client.post("/v1/cache/feedback", json=body).status_code

        assert report(second, tokens[0]) == 200  # served by the first replica, reported through the second
        assert report(first, tokens[1]) == 200
        assert report(first, tokens[0]) == 404  # the same hit again
        assert report(second, tokens[1].replace(tokens[1].split("@")[0], "987654321")) == 404  # never existed
        assert report(first, tokens[0], tenant=None) == 404  # no tenant: not the tenant the hit was served to
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 2 and all(line["similarity"] is not None and line["similarity"] >= 0.9 for line in lines)
    result = CliRunner().invoke(app, ["evaluate-feedback", "--feedback-log", str(log)])
    assert result.exit_code == 0, result.output
    coding = json.loads(log.with_suffix(".report.json").read_text())["domains"]["coding"]
    assert (coding["reported"], coding["wrong"], coding["precision"]) == (2, 2, 0.0)


def test_evaluate_feedback_counts_a_hit_reported_twice_once(tmp_path):
    log = tmp_path / "feedback.jsonl"
    rows = [
        {"time": 0.0, "domain": "coding", "id": 7, "correct": True, "similarity": 0.93},
        {"time": 1.0, "domain": "coding", "id": 7, "correct": False, "similarity": None},  # a second replica's report
        {"time": 2.0, "domain": "coding", "id": 8, "correct": True, "similarity": 0.97},
    ]
    log.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert CliRunner().invoke(app, ["evaluate-feedback", "--feedback-log", str(log)]).exit_code == 0
    coding = json.loads(log.with_suffix(".report.json").read_text())["domains"]["coding"]
    assert (coding["reported"], coding["wrong"], coding["highest_wrong_similarity"]) == (2, 1, 0.93)
