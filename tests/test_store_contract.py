"""One contract, every store: the embedded store, Milvus (Lite in process, and a real Milvus 2.3 server) and a real
Redis 8 with vector search
keep the same promises, checked on fixed vectors (no encoder): the nearest entries, partitions, TTL, eviction,
concurrency, persistence and deletion. What the cache adds on top (prompts, rewordings, invalidation by prompt)
is tested through `SemanticCache` in test_cache.py."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cachetune.cache.store import NamespaceSettings, NewEntry
from cachetune.cache_config import MemoryStoreConfig, MilvusStoreConfig, RedisStoreConfig

DIM = 16
BACKENDS = ["memory", "milvus", pytest.param("milvus-server", marks=pytest.mark.servers), pytest.param("redis", marks=pytest.mark.servers)]
NOW = 1_000.0


def unit(*seeds_and_weights: tuple[int, float]) -> np.ndarray:
    """A unit vector: the normalised sum of seeded random directions, weighted."""
    total = sum(weight * np.random.default_rng(seed).normal(size=DIM) for seed, weight in seeds_and_weights)
    return (total / np.linalg.norm(total)).astype(np.float32)


QUESTION = unit((0, 1.0))
REWORDED = unit((0, 1.0), (1, 0.15))  # cosine to QUESTION about 0.99
UNRELATED = unit((2, 1.0))
OTHERS = [unit((seed, 1.0)) for seed in (10, 11, 12, 13)]


def entry(vector, prompt: str, partition: str = "", created: float = NOW, ttl: float | None = None, metadata=None) -> NewEntry:
    return NewEntry(partition, vector, prompt, f"answer to {prompt}", created, ttl, metadata)


@pytest.fixture(params=BACKENDS)
def open_store(request, tmp_path):
    """A factory of stores of the parametrised kind; a second call reopens the same data."""
    backend = request.param
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    opened = []

    def open_(max_entries: int = 100, eviction: str = "lru"):
        namespaces = {"coding": NamespaceSettings(max_entries, eviction)}
        if backend == "memory":
            from cachetune.cache.memory import MemoryStore

            store = MemoryStore(DIM, namespaces, MemoryStoreConfig(persist_path=str(tmp_path / "cache.npz")))
        elif backend.startswith("milvus"):
            from cachetune.cache.milvus import MilvusStore

            if backend == "milvus":
                store = MilvusStore(MilvusStoreConfig(uri=str(tmp_path / "milvus.db")), DIM, namespaces)
            else:  # one collection for every test (a server makes one in seconds), emptied before each test's first store
                uri = request.getfixturevalue("milvus_server").url
                store = MilvusStore(MilvusStoreConfig(uri=uri, collection_prefix="contract_"), DIM, namespaces)
                if not opened:
                    from pymilvus import MilvusClient

                    MilvusClient(uri=uri).delete("contract_coding", filter="id >= 0")
        else:
            from cachetune.cache.redis import RedisStore

            store = RedisStore(RedisStoreConfig(url=request.getfixturevalue("redis_server").url, key_prefix=prefix), DIM, namespaces)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def test_the_nearest_entry_is_found_with_its_similarity(open_store):
    store = open_store()
    assert store.similar("coding", "", QUESTION, NOW, -1.0, 1) == []
    key = store.add("coding", entry(QUESTION, "q", metadata={"model": "gpt"}))
    store.add("coding", entry(UNRELATED, "u"))
    [(found, similarity)] = store.similar("coding", "", REWORDED, NOW + 5, -1.0, 1)
    assert found.id == key and found.prompt == "q" and found.response == "answer to q" and found.metadata == {"model": "gpt"}
    assert found.created == pytest.approx(NOW) and similarity == pytest.approx(float(QUESTION @ REWORDED), abs=1e-4)
    assert [e.prompt for e, _ in store.similar("coding", "", REWORDED, NOW, -1.0, 5)] == ["q", "u"]  # most similar first
    assert [e.prompt for e, _ in store.similar("coding", "", REWORDED, NOW, 0.9, 5)] == ["q"]  # at least min_similarity


def test_partitions_never_see_each_other_whatever_their_names(open_store):
    store = open_store()
    tricky = "a}|(@tenant:{b"  # would end a Redis TAG and widen the filter if spliced in raw
    for partition in ("b", "a,b", 'acme" or tenant != "x', "x\x1fscope\x1fexact:0"):
        store.add("coding", entry(QUESTION, f"{partition}'s", partition))
    for other in (tricky, "a", "B", "", "x", "x\x1fscope"):  # a TAG separator, case, the default partition, a prefix
        assert store.similar("coding", other, QUESTION, NOW, -1.0, 5) == [], other
    store.add("coding", entry(QUESTION, f"{tricky}'s", tricky))
    for partition in (tricky, "b", "a,b", 'acme" or tenant != "x', "x\x1fscope\x1fexact:0"):
        assert [e.prompt for e, _ in store.similar("coding", partition, QUESTION, NOW, -1.0, 5)] == [f"{partition}'s"]


def test_entries_expire_after_their_ttl(open_store):
    store = open_store()
    store.add("coding", entry(QUESTION, "q", ttl=60))
    store.add("coding", entry(UNRELATED, "u", ttl=600))
    assert len(store.similar("coding", "", QUESTION, NOW + 59, -1.0, 5)) == 2 and store.count("coding", NOW + 59) == 2
    assert [e.prompt for e, _ in store.similar("coding", "", QUESTION, NOW + 61, -1.0, 5)] == ["u"]
    assert store.count("coding", NOW + 61) == 1


@pytest.mark.parametrize(
    "eviction, used, gone",
    [
        ("lru", [0, 0, 2, 0, 2], 1),  # 1 was used longest ago
        ("fifo", [0, 0, 2, 0, 2], 0),  # 0 came first, however often it is used
        ("lfu", [0, 0, 2, 0, 1], 2),  # 1 and 2 were used least (once each), 2 longer ago
    ],
)
def test_a_full_namespace_evicts_in_its_own_order(open_store, eviction, used, gone):
    store, now = open_store(max_entries=3, eviction=eviction), NOW
    for number in range(3):
        store.add("coding", entry(OTHERS[number], f"p{number}", created=now))
        now += 1
    for number in used:
        [(found, _)] = store.similar("coding", "", OTHERS[number], now, 0.99, 1)
        store.record_hit("coding", found, now, 0.99)
        now += 1
    store.add("coding", entry(OTHERS[3], "p3", created=now))
    assert store.count("coding", now) == 3
    assert store.similar("coding", "", OTHERS[gone], now, 0.99, 1) == []
    kept = [n for n in range(4) if n != gone]
    assert all(store.similar("coding", "", OTHERS[n], now, 0.99, 1)[0][0].prompt == f"p{n}" for n in kept)


def test_concurrent_adds_and_lookups_lose_nothing_and_mix_nothing(open_store):
    store = open_store(max_entries=1_000)
    vectors = [unit((100 + n, 1.0)) for n in range(12)]

    def work(partition: int) -> list[int]:
        ids = [store.add("coding", entry(v, f"{partition}:{n}", str(partition))) for n, v in enumerate(vectors)]
        found = [store.similar("coding", str(partition), v, NOW, 0.99, 1) for v in vectors]
        assert [hits[0][0].prompt for hits in found] == [f"{partition}:{n}" for n in range(len(vectors))]
        return ids

    with ThreadPoolExecutor(8) as pool:
        ids = [key for keys in pool.map(work, range(8)) for key in keys]
    assert len(set(ids)) == len(ids) == 8 * len(vectors)
    assert store.count("coding", NOW) == 8 * len(vectors)


def test_entries_survive_closing_and_reopening(open_store):
    store = open_store()
    ids = [store.add("coding", entry(vector, f"p{n}")) for n, vector in enumerate(OTHERS)]
    store.close()
    reopened = open_store()
    assert reopened.count("coding", NOW) == 4
    assert reopened.similar("coding", "", OTHERS[2], NOW, 0.99, 1)[0][0].id == ids[2]
    assert reopened.add("coding", entry(UNRELATED, "new")) not in ids  # ids never repeat


def test_a_hit_keeps_the_similarity_it_was_served_at_with_its_entry(open_store):
    store = open_store()
    key = store.add("coding", entry(QUESTION, "q", "acme"))
    assert store.get("coding", "acme", key).served_similarity is None and store.get("coding", "beta", key) is None
    [(found, similarity)] = store.similar("coding", "acme", REWORDED, NOW, 0.9, 1)
    store.record_hit("coding", found, NOW + 1, similarity)
    again = store.get("coding", "acme", key)
    assert again.hits == 1 and again.served_similarity == pytest.approx(similarity, abs=1e-6)
    assert store.get("coding", "acme", 987_654_321) is None


def test_a_tenants_deletion_reaches_the_partitions_under_it_and_no_other(open_store):
    store = open_store()
    scoped = "acme\x1fscope\x1fexact:0"
    keys = {name: store.add("coding", entry(vector, name, name)) for name, vector in zip(("acme", scoped, "acme2", "x\x1facme"), OTHERS)}
    assert [e.prompt for e, _ in store.similar("coding", "acme", OTHERS[1], NOW, 0.99, 5, below=True)] == [scoped]
    assert store.similar("coding", "acme", OTHERS[1], NOW, 0.99, 5) == []  # without below: the tenant's own partition only
    assert store.delete("coding", "acme", [keys[scoped], keys["acme2"]], below=True) == 1
    assert store.delete("coding", "acme", below=True) == 1  # what is left of acme: its own entry
    assert store.count("coding", NOW) == 2 and store.get("coding", "acme2", keys["acme2"]) is not None


def test_deletion_by_id_and_by_partition_touches_only_that_partitions_entries(open_store):
    store = open_store()
    mine = [store.add("coding", entry(vector, f"p{n}", "a")) for n, vector in enumerate(OTHERS)]
    theirs = store.add("coding", entry(QUESTION, "b's", "b"))
    assert store.delete("coding", "a", [theirs]) == 0  # another partition's id: left alone
    assert store.delete("coding", "a", [mine[1], 999_999]) == 1  # an id that never was: not counted
    assert store.similar("coding", "a", OTHERS[1], NOW, 0.99, 1) == []
    assert store.delete("coding", "a") == 3  # everything left of partition a
    assert store.count("coding", NOW) == 1 and store.similar("coding", "b", QUESTION, NOW, 0.99, 1)[0][0].prompt == "b's"
