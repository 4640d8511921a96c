"""One contract, every store: the embedded store, Milvus (Lite, in process) and a real Redis 8 with vector search
keep the same promises through `SemanticCache`: hits, misses, tenants, TTL, eviction, concurrency, persistence."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from cachetune.cache.semantic_cache import SemanticCache

QUESTION = "How do I reverse a list in Python?"
REWORDED = "How can I reverse a list in python?"
UNRELATED = "What are the symptoms of type 2 diabetes?"
PROMPTS = [
    "How do I reverse a list in Python?",
    "How to read a CSV file with pandas?",
    "How do I merge two dicts?",
    "How do I start a Docker container?",
]
BACKENDS = ["memory", "milvus", "redis"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(params=BACKENDS)
def make_cache(request, tmp_path, clock):
    """A factory of caches on the parametrised store; a second call with the same folder reopens the same data."""
    backend = request.param
    store = {
        "memory": {"memory": {"persist_path": str(tmp_path / "cache.npz")}},
        "milvus": {"milvus": {"uri": str(tmp_path / "milvus.db")}},
        "redis": {
            "redis": {
                "url": request.getfixturevalue("redis_server").url if backend == "redis" else "",
                "key_prefix": f"t{uuid.uuid4().hex[:8]}:",
            }
        },
    }[backend]
    opened = []

    def make(**domain) -> SemanticCache:
        settings = {"similarity_threshold": 0.85, "ttl_seconds": 60, "max_entries": 100, "eviction": "lru", **domain}
        config = {"semantic_cache": {"backend_type": backend, "domains": {"coding": settings}, **store}}
        path = tmp_path / "cache.yaml"
        path.write_text(yaml.safe_dump(config))
        cache = SemanticCache.from_config(path, clock=clock)
        opened.append(cache)
        return cache

    make.backend = backend
    yield make
    for cache in opened:
        cache.close()


def test_a_rewording_hits_and_an_unrelated_prompt_misses(make_cache, clock):
    cache = make_cache()
    assert cache.check(QUESTION, "coding") is None
    entry_id = cache.store(QUESTION, "use reversed() or list[::-1]", "coding", metadata={"model": "gpt"})
    clock.now += 5
    hit = cache.check(REWORDED, "coding")
    assert hit.response == "use reversed() or list[::-1]" and hit.prompt == QUESTION and hit.id == entry_id
    assert 0.85 <= hit.similarity < 1.0 and hit.age_seconds == pytest.approx(5) and hit.metadata == {"model": "gpt"}
    assert cache.check(UNRELATED, "coding") is None


def test_tenants_never_see_each_other_whatever_their_names(make_cache):
    cache = make_cache()
    tricky = "a}|(@tenant:{b"  # would end a Redis TAG and widen the filter if spliced in raw
    cache.store(QUESTION, "b's answer", "coding", tenant="b")
    cache.store(QUESTION, "a,b's answer", "coding", tenant="a,b")  # a TAG separator inside a name
    assert cache.check(REWORDED, "coding", tenant=tricky) is None
    assert cache.check(REWORDED, "coding", tenant="a") is None
    assert cache.check(REWORDED, "coding", tenant="B") is None  # tenants are case sensitive
    assert cache.check(REWORDED, "coding") is None  # the default tenant is a tenant too
    cache.store(QUESTION, "tricky's answer", "coding", tenant=tricky)
    assert cache.check(REWORDED, "coding", tenant=tricky).response == "tricky's answer"
    assert cache.check(REWORDED, "coding", tenant="b").response == "b's answer"
    assert cache.check(REWORDED, "coding", tenant="a,b").response == "a,b's answer"


def test_entries_expire_after_their_ttl(make_cache, clock):
    cache = make_cache()
    cache.store(QUESTION, "answer", "coding")
    cache.store(UNRELATED, "answer 2", "coding", ttl=600)
    clock.now += 59
    assert cache.check(REWORDED, "coding") is not None and cache.entries("coding") == 2
    clock.now += 2
    assert cache.check(REWORDED, "coding") is None
    assert cache.check(UNRELATED, "coding") is not None and cache.entries("coding") == 1


@pytest.mark.parametrize(
    "eviction, used, gone",
    [
        ("lru", [0, 0, 2, 0, 2], 1),  # 1 was used longest ago
        ("fifo", [0, 0, 2, 0, 2], 0),  # 0 came first, however often it is used
        ("lfu", [0, 0, 2, 0, 1], 2),  # 1 and 2 were used least (once each), 2 longer ago
    ],
)
def test_a_full_namespace_evicts_in_its_own_order(make_cache, clock, eviction, used, gone):
    cache = make_cache(max_entries=3, eviction=eviction)
    for number, prompt in enumerate(PROMPTS[:3]):
        cache.store(prompt, f"answer {number}", "coding")
        clock.now += 1
    for number in used:
        assert cache.check(PROMPTS[number], "coding").response == f"answer {number}"
        clock.now += 1
    cache.store(PROMPTS[3], "answer 3", "coding")
    assert cache.entries("coding") == 3
    assert cache.check(PROMPTS[gone], "coding") is None
    kept = [n for n in range(4) if n != gone]
    assert all(cache.check(PROMPTS[n], "coding").response == f"answer {n}" for n in kept)


def test_concurrent_stores_and_checks_lose_nothing_and_mix_nothing(make_cache):
    cache = make_cache(max_entries=1_000)
    prompts = [f"How do I {verb} a {thing} in Python?" for verb in ("sort", "copy", "parse", "print") for thing in ("list", "dict", "date")]
    vectors = {prompt: cache.embed(prompt, "coding") for prompt in prompts}

    def work(tenant: int) -> list[int]:
        ids = [cache.store(p, f"{tenant}:{p}", "coding", tenant=str(tenant), vector=vectors[p]) for p in prompts]
        hits = [cache.check(p, "coding", tenant=str(tenant), vector=vectors[p]) for p in prompts]
        assert all(hit is not None and hit.response == f"{tenant}:{p}" for hit, p in zip(hits, prompts))
        return ids

    with ThreadPoolExecutor(8) as pool:
        ids = [key for keys in pool.map(work, range(8)) for key in keys]
    assert len(set(ids)) == len(ids) == 8 * len(prompts)
    assert cache.entries("coding") == 8 * len(prompts)


def test_entries_survive_closing_and_reopening(make_cache, clock):
    cache = make_cache()
    for number, prompt in enumerate(PROMPTS):
        cache.store(prompt, f"answer {number}", "coding")
    cache.close()
    reopened = make_cache()
    assert reopened.entries("coding") == 4
    assert reopened.check(REWORDED, "coding").response == "answer 0"
    assert reopened.store(UNRELATED, "new", "coding") not in {reopened.check(p, "coding").id for p in PROMPTS}


def test_invalidation_by_id_by_prompt_and_by_tenant_touches_only_the_callers_entries(make_cache):
    cache = make_cache()
    mine = {prompt: cache.store(prompt, f"answer {n}", "coding", tenant="a") for n, prompt in enumerate(PROMPTS)}
    theirs = cache.store(QUESTION, "b's answer", "coding", tenant="b")
    assert cache.invalidate("coding", tenant="a", ids=[theirs]) == 0  # another tenant's id: left alone
    assert cache.check(REWORDED, "coding", tenant="b").response == "b's answer"
    assert cache.invalidate("coding", tenant="a", ids=[mine[PROMPTS[1]]]) == 1
    assert cache.check(PROMPTS[1], "coding", tenant="a") is None
    assert cache.invalidate("coding", tenant="a", prompt=REWORDED) == 1  # the stored prompt it rewords
    assert cache.check(QUESTION, "coding", tenant="a") is None
    assert cache.check(PROMPTS[2], "coding", tenant="a").response == "answer 2"
    assert cache.invalidate("coding", tenant="a") == 2  # everything left of tenant a
    assert cache.entries("coding") == 1 and cache.check(REWORDED, "coding", tenant="b").response == "b's answer"
