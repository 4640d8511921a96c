"""Two `cachetune serve` processes on one real Redis, as a user scales out behind a load balancer: one cache for both;
and what they do when Redis fails: answers never lost (the upstream called once), misses within milliseconds once
the breaker is open, the cache back by itself when Redis returns empty, ids that never repeat."""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import yaml
from servers import CacheService, RedisServer, ScriptedServer
from traffic import echo_completion

pytestmark = pytest.mark.servers

QUESTION = "How do I reverse a list in Python?"
REWORDED = "How can I reverse a list in python?"


def echo_upstream() -> ScriptedServer:
    """A real OpenAI-compatible HTTP server on loopback that answers each chat with its own messages (and counts)."""
    return ScriptedServer(lambda number, request: (200, json.dumps(echo_completion(request)).encode()))


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, onnx_folder):
    """A Redis of its own (killed and flushed here: the tests run in file order, the outage last), an upstream, and
    two replicas configured alike."""
    tmp_path = tmp_path_factory.mktemp("replicas")
    redis = RedisServer(tmp_path / "redis")
    upstream = echo_upstream()
    config = {
        "semantic_cache": {
            "backend_type": "redis",
            "redis": {"url": redis.url, "key_prefix": f"r{uuid.uuid4().hex[:6]}:", "timeout_seconds": 0.3, "retries": 1},
            "store_cooldown_seconds": 1.0,
            "domains": {"coding": {"similarity_threshold": 0.85}},
            "onnx_cache": str(onnx_folder),
            "upstream": {"base_url": upstream.url, "model_domains": {"qwen": "coding"}, "retries": 0},
            "feedback_log": str(tmp_path / "feedback.jsonl"),
        }
    }
    (tmp_path / "cache.yaml").write_text(yaml.safe_dump(config))
    services = [CacheService(tmp_path / "cache.yaml"), CacheService(tmp_path / "cache.yaml")]
    yield redis, upstream, services
    for service in services:
        service.stop()
    upstream.shutdown()
    redis.stop()


def check(service, prompt: str, tenant: str = "acme") -> dict:
    return service.client.post("/v1/cache/check", json={"prompt": prompt, "domain": "coding", "tenant": tenant}).raise_for_status().json()


def store(service, prompt: str, answer: str, tenant: str = "acme") -> int:
    body = {"prompt": prompt, "response": answer, "domain": "coding", "tenant": tenant}
    return service.client.post("/v1/cache/store", json=body).raise_for_status().json()["id"]


def ask(service, content: str) -> httpx.Response:
    body = {"model": "qwen", "messages": [{"role": "user", "content": content}]}
    return service.client.post("/v1/chat/completions", json=body, headers={"x-cachetune-tenant": "acme"})


def test_two_replicas_are_one_cache(replicas):
    _, _, (a, b) = replicas
    entry = store(a, QUESTION, "list[::-1]")
    assert check(b, REWORDED)["id"] == entry and check(b, REWORDED, tenant="beta")["hit"] is False
    assert check(a, QUESTION)["tier"] == "exact"  # now in a's exact tier: its vector kept, the store still decides
    feedback = b.client.post("/v1/cache/feedback", json={"domain": "coding", "id": entry, "correct": False, "tenant": "acme"})
    assert feedback.json() == {"deleted": 1}
    assert check(a, QUESTION)["hit"] is False and check(a, REWORDED)["hit"] is False
    store(a, "How do I merge two dicts?", "a | b")
    assert b.client.post("/v1/cache/invalidate", json={"domain": "coding", "tenant": "acme", "all": True}).json() == {"deleted": 1}
    assert check(a, "How do I merge two dicts?")["hit"] is False
    with ThreadPoolExecutor(8) as pool:  # concurrent stores through both: no id given twice
        ids = list(pool.map(lambda n: store((a, b)[n % 2], f"question number {n} about lists", f"answer {n}"), range(80)))
    assert len(set(ids)) == 80


@pytest.mark.parametrize("how", ["restart without its data", "flushall"])
def test_redis_back_empty_brings_the_cache_back_by_itself_and_ids_never_repeat(how, replicas):
    redis, _, (a, b) = replicas
    old = [store(a, f"old question {n} about python lists", f"old answer {n}") for n in range(3)]
    if how == "flushall":
        import redis as redis_py

        redis_py.Redis.from_url(redis.url).flushall()
    else:
        redis.kill()
        for path in redis.folder.glob("*.rdb"):
            path.unlink()
        redis.start()
        time.sleep(1.1)  # past the breaker's cooldown, so the next call probes
    deadline, served = time.time() + 5, False
    new = store(b, QUESTION, "list[::-1]") if how == "flushall" else None
    while time.time() < deadline and not served:
        try:
            new = new or store(b, QUESTION, "list[::-1]")
            served = check(a, REWORDED)["hit"] and check(b, QUESTION)["hit"]
        except httpx.HTTPStatusError:
            time.sleep(0.2)
    assert served, "hits did not resume within 5 s without a restart"
    assert new > max(old) and a.client.get("/readyz").status_code == 200
    assert (
        b.client.post("/v1/cache/feedback", json={"domain": "coding", "id": old[0], "correct": False, "tenant": "acme"}).status_code == 404
    )
    assert check(a, QUESTION)["hit"] is True  # an old id reported cannot delete the new entry


def test_with_redis_down_no_answer_is_lost_and_misses_come_at_once(replicas):
    redis, upstream, (a, b) = replicas
    ask(a, QUESTION)
    assert ask(b, REWORDED).headers["x-cachetune-cache"] == "hit"
    redis.kill()
    calls, statuses, timings = upstream.requests, [], []
    for n in range(10):
        response = ask((a, b)[n % 2], f"What does Python keyword number {n} do?")
        statuses.append(response.status_code)
        assert response.headers["x-cachetune-cache"] == "miss" and "keyword number" in response.json()["choices"][0]["message"]["content"]
    assert statuses == [200] * 10 and upstream.requests == calls + 10  # the upstream called once per request, its answer relayed
    ask(a, "one more while the breaker is open")
    for _ in range(20):
        started = time.perf_counter()
        assert check(a, QUESTION)["hit"] is False
        timings.append((time.perf_counter() - started) * 1000)
    assert float(np.percentile(timings, 99)) < 50, timings  # after the first failure: the breaker answers, not Redis' retries
    down = a.client.post("/v1/cache/store", json={"prompt": "x", "response": "y", "domain": "coding"})
    assert down.status_code == 503 and "redis" in down.text and "127.0.0.1" not in down.text and str(redis.port) not in down.text
    assert a.client.get("/readyz").status_code == 503 and a.client.get("/healthz").json()["state"] == "failing"
