"""The Redis store under faults: kill -9 with AOF, an outage answered as misses (or errors), reconnection."""

import logging
import time

import numpy as np
import pytest
import yaml
from servers import RedisServer

from cachetune.cache.semantic_cache import SemanticCache
from cachetune.errors import StoreError

pytestmark = pytest.mark.servers  # a real Redis 8 with RediSearch


def redis_cache(tmp_path, url: str, on_store_error: str = "miss", cooldown: float = 0.0) -> SemanticCache:
    config = {
        "semantic_cache": {
            "backend_type": "redis",
            "on_store_error": on_store_error,
            "store_cooldown_seconds": cooldown,  # 0: every call tries the store (the breaker has its own test)
            "redis": {"url": url, "timeout_seconds": 0.5, "retries": 2, "backoff_cap_seconds": 0.2},
            "domains": {"coding": {"similarity_threshold": 0.95, "max_entries": 100_000}},
        }
    }
    path = tmp_path / f"cache-{on_store_error}.yaml"
    path.write_text(yaml.safe_dump(config))
    return SemanticCache.from_config(path)


def unit_vectors(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, 384)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_kill_9_with_aof_everysec_loses_at_most_the_last_second_and_the_cache_reconnects(tmp_path, caplog):
    server = RedisServer(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "everysec")
    cache = redis_cache(tmp_path, server.url)
    vectors = unit_vectors(20_000, 0)
    acknowledged = []  # (time the store returned, prompt number)
    started = time.time()
    while time.time() - started < 2.5:
        number = len(acknowledged)
        cache.store(f"prompt {number}", f"answer {number}", "coding", vector=vectors[number])
        acknowledged.append((time.time(), number))
    server.kill()
    killed = time.time()

    caplog.set_level(logging.WARNING, logger="cachetune.cache")
    assert cache.check("prompt 0", "coding", vector=vectors[0]) is None  # down: a miss, not an exception
    assert cache.check("prompt 1", "coding", vector=vectors[1]) is None
    with pytest.raises(StoreError, match="redis at redis://127.0.0.1:.*Connection refused"):
        cache.store("lost?", "never acknowledged", "coding", vector=vectors[-1])  # reported, never silently dropped
    assert cache.store_errors == 3

    server.start()  # the same data folder: redis replays its append-only file
    durable = [number for at, number in acknowledged if at <= killed - 1.0]
    assert len(durable) > 100
    assert cache.entries("coding") >= len(durable)  # the same cache object reconnected by itself
    for number in durable[:: max(1, len(durable) // 200)] + durable[-20:]:
        hit = cache.check(f"prompt {number}", "coding", vector=vectors[number])
        assert hit is not None and hit.response == f"answer {number}", number
    outage = [record.getMessage() for record in caplog.records if record.name == "cachetune.cache"]
    assert len(outage) == 2 and "failing" in outage[0] and "reachable again" in outage[1]  # once when it starts, once when it ends
    cache.close()
    server.stop()


def test_an_outage_can_fail_closed_instead(tmp_path):
    server = RedisServer(tmp_path / "redis")
    cache = redis_cache(tmp_path, server.url, on_store_error="error")
    vector = unit_vectors(1, 1)[0]
    cache.store("a prompt", "an answer", "coding", vector=vector)
    server.kill()
    started = time.time()
    with pytest.raises(StoreError):
        cache.check("a prompt", "coding", vector=vector)
    assert time.time() - started < 5  # bounded: a few retries with backoff, each within the timeout
    cache.close()
