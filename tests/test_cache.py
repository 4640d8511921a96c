"""The semantic cache as a library: hits, misses, isolation, TTL, eviction, adapters, stores."""

import json
import shutil

import numpy as np
import pytest
import yaml

from cachetune.cache.encoders import DomainEncoders
from cachetune.cache.eviction import EvictionOrder
from cachetune.cache.index import AnnIndex, ExactIndex
from cachetune.cache.semantic_cache import SemanticCache
from cachetune.cache_config import CacheConfig, HnswConfig, load_config
from cachetune.errors import CacheError, InputError, ModelError, UnknownDomainError
from cachetune.models import load_model

QUESTION = "How do I reverse a list in Python?"
REWORDED = "How can I reverse a list in python?"
UNRELATED = "What are the symptoms of type 2 diabetes?"


def write_config(folder, domains: dict, **cache) -> str:
    path = folder / "cache.yaml"
    path.write_text(yaml.safe_dump({"semantic_cache": {"domains": domains, **cache}}))
    return str(path)


@pytest.fixture
def cache(make_cache):
    domains = {
        "coding": {"similarity_threshold": 0.85, "ttl_seconds": 60, "max_entries": 3, "eviction": "lru"},
        "support": {"namespace": "help", "similarity_threshold": 0.85},
    }
    return make_cache(domains)


def test_paraphrase_hits_unrelated_misses(cache, clock):
    assert cache.check(QUESTION, "coding") is None
    cache.store(QUESTION, "use reversed() or list[::-1]", "coding", metadata={"model": "gpt"})
    clock.now += 5
    hit = cache.check(REWORDED, "coding")
    assert hit.response == "use reversed() or list[::-1]" and hit.prompt == QUESTION
    assert 0.85 <= hit.similarity < 1.0 and hit.age_seconds == 5 and hit.metadata == {"model": "gpt"}
    assert cache.check(UNRELATED, "coding") is None


def test_tenants_and_domains_never_see_each_other(cache):
    cache.store(QUESTION, "tenant a's answer", "coding", tenant="a")
    assert cache.check(QUESTION, "coding", tenant="b") is None
    assert cache.check(QUESTION, "coding") is None  # the default tenant is a tenant too
    assert cache.check(QUESTION, "support", tenant="a") is None
    assert cache.check(QUESTION, "coding", tenant="a").response == "tenant a's answer"


def test_entries_expire_after_their_ttl(cache, clock):
    cache.store(QUESTION, "answer", "coding")
    cache.store(UNRELATED, "answer 2", "coding", ttl=600)
    clock.now += 59
    assert cache.check(QUESTION, "coding") is not None
    clock.now += 2
    assert cache.check(QUESTION, "coding") is None
    assert cache.check(UNRELATED, "coding") is not None and cache.entries("coding") == 1


def test_least_recently_used_goes_when_full(cache):
    prompts = ["How do I reverse a list in Python?", "How to read a CSV file with pandas?", "How do I merge two dicts?"]
    for number, prompt in enumerate(prompts):
        cache.store(prompt, f"answer {number}", "coding")
    assert cache.check(prompts[0], "coding") is not None  # now the second is least recently used
    cache.store("How do I start a Docker container?", "answer 3", "coding")
    assert cache.entries("coding") == 3
    assert cache.check(prompts[1], "coding") is None
    assert cache.check(prompts[0], "coding") is not None and cache.check(prompts[2], "coding") is not None


def test_a_vector_passed_to_check_and_store_is_not_computed_again(encoder_pool, onnx_folder, monkeypatch):
    config = CacheConfig(domains={"coding": {"similarity_threshold": 0.85}}, onnx_cache=str(onnx_folder))
    encoders, calls = DomainEncoders(config, pool=encoder_pool), []
    encode = encoders.encode
    monkeypatch.setattr(encoders, "encode", lambda domain, text: calls.append(text) or encode(domain, text))
    cache = SemanticCache(config, encoders=encoders)
    vector = cache.embed(QUESTION, "coding")
    assert cache.check(QUESTION, "coding", vector=vector) is None
    cache.store(QUESTION, "answer", "coding", vector=vector)
    assert calls == [QUESTION]
    assert cache.check(REWORDED, "coding").prompt == QUESTION  # without a vector: embedded here
    assert calls == [QUESTION, REWORDED]
    cache.close()
    encoders.close()


def test_a_cache_closes_what_it_built_and_leaves_what_it_was_given(encoder_pool, onnx_folder):
    from cachetune.cache.memory import MemoryStore
    from cachetune.cache.store import NamespaceSettings

    config = CacheConfig(domains={"coding": {"similarity_threshold": 0.85}}, onnx_cache=str(onnx_folder))
    encoders = DomainEncoders(config, pool=encoder_pool)
    store = MemoryStore(encoders.dim, {"coding": NamespaceSettings(10, "lru")}, config.memory)
    with SemanticCache(config, encoders=encoders, store=store) as cache:
        cache.store(QUESTION, "answer", "coding")
    assert store.count("coding", 2e9) == 1 and encoders.encode("coding", UNRELATED).shape == (encoders.dim,)  # both still open
    with pytest.raises(ModelError, match="no encoder for domain support"):
        SemanticCache(config.model_copy(update={"domains": {**config.domains, "support": config.domains["coding"]}}), encoders=encoders)
    encoders.close()


def test_bad_requests_and_configs_say_what_is_wrong(cache, tmp_path):
    with pytest.raises(UnknownDomainError, match="unknown domain 'legal'; configured: coding, support"):
        cache.check(QUESTION, "legal")
    with pytest.raises(CacheError, match="prompt is empty"):
        cache.store("  ", "answer", "coding")
    with pytest.raises(InputError, match="semantic_cache.domains.coding.treshold: Extra inputs are not permitted"):
        load_config(write_config(tmp_path, {"coding": {"treshold": 0.9}}))
    with pytest.raises(InputError, match="semantic_cache.domains.coding.eviction: Input should be 'lru', 'fifo' or 'lfu'"):
        load_config(write_config(tmp_path, {"coding": {"eviction": "random"}}))
    with pytest.raises(InputError, match="share namespace 'x'"):
        load_config(write_config(tmp_path, {"a": {"namespace": "x"}, "b": {"namespace": "x"}}))
    with pytest.raises(InputError, match="no such file"):
        load_config(tmp_path / "missing.yaml")


def test_eviction_orders():
    for policy, expected in (("fifo", 1), ("lru", 2), ("lfu", 3)):
        order = EvictionOrder(policy)
        for key in (1, 2, 3):
            order.added(key)
        for key in (2, 2, 3, 1):
            order.used(key)
        # fifo: first in; lru: 2 was used longest ago; lfu: 1 and 3 were used least, 3 longer ago
        assert order.victim() == expected, policy
        order.removed(expected)
        assert expected not in order.keys()


def test_exact_and_hnsw_indexes_find_the_same_neighbours():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(2_000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    exact, ann = ExactIndex(32), AnnIndex(32)
    for key, vector in enumerate(vectors):
        exact.add(key, vector)
        ann.add(key, vector)
    for key in range(0, 2_000, 3):
        exact.remove(key)
        ann.remove(key)
    queries = vectors[1::7] + rng.normal(scale=0.05, size=(len(vectors[1::7]), 32)).astype(np.float32)
    agree = [exact.search(q, 1)[0][0] == ann.search(q, 1)[0][0] for q in queries]
    assert np.mean(agree) > 0.95 and all(exact.search(q, 1)[0][0] % 3 for q in queries)
    assert len(exact) == len(ann) == 1_333


def test_hnsw_conversion_leaves_every_entry_reachable():
    """A namespace converted to HNSW in one bulk add: every entry is found by its own vector. Inserted on two threads,
    2 to 9 of these 10K clustered vectors were left unreachable in each of six runs (unum-cloud/USearch#735); on one
    thread none."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((2_000, 384)).astype(np.float32)
    vectors = centres[rng.integers(0, 2_000, 10_000)] + 0.5 * rng.standard_normal((10_000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = AnnIndex(384, HnswConfig(connectivity=32, expansion_add=128))  # a cheaper graph than the default, as exposed
    index.add_many(np.arange(10_000), vectors)
    # usearch's batch search walks the same graph as one search per entry, in a seventh of the time; with the
    # two-thread insert it finds the unreachable entries
    found = index._index.search(vectors, 1).keys[:, 0]
    assert np.flatnonzero(found != np.arange(10_000)).tolist() == []
    assert [key for key, _ in index.search(vectors[123], 1)] == [123]


def test_store_persists_and_switches_to_hnsw(make_cache, tmp_path):
    domains = {"coding": {"similarity_threshold": 0.85}}
    memory = {"index": "auto", "ann_above": 3, "persist_path": str(tmp_path / "cache.npz")}
    cache = make_cache(domains, memory=memory)
    prompts = [
        "How do I reverse a list in Python?",
        "How to read a CSV file with pandas?",
        "How do I merge two dicts?",
        "How do I start a Docker container?",
    ]
    for prompt in prompts:
        cache.store(prompt, f"answer to {prompt}", "coding")
    assert type(cache._store._namespaces["coding"].partitions[""]).__name__ == "AnnIndex"
    cache.close()
    reopened = make_cache(domains, memory=memory)
    assert reopened.entries("coding") == 4
    assert reopened.check(REWORDED, "coding").response == f"answer to {QUESTION}"


def encoders_for(onnx_cache, adapter, mode: str = "merged", encoder: str = "torch", plain: bool = True) -> DomainEncoders:
    domains = {"tuned": {"embedding_model_path": str(adapter), "encoder": encoder}} | ({"plain": {"encoder": encoder}} if plain else {})
    return DomainEncoders(CacheConfig(domains=domains, adapter_mode=mode, onnx_cache=str(onnx_cache)))


@pytest.fixture(scope="module")
def onnx_cache(adapter, tmp_path_factory):
    """An ONNX cache folder after fp32 encoders for the adapter's domain and a plain domain were first built."""
    folder = tmp_path_factory.mktemp("onnx")
    encoders_for(folder, adapter, encoder="onnx").close()
    return folder


def test_switched_adapters_encode_like_their_own_models(adapter, tmp_path):
    switched, merged = encoders_for(tmp_path, adapter, "switched"), encoders_for(tmp_path, adapter, "merged")
    tuned, base = load_model(str(adapter)), load_model(None)
    for text in (QUESTION, UNRELATED):
        expected = tuned.encode([text], normalize_embeddings=True)[0]
        assert np.dot(switched.encode("tuned", text), expected) > 0.9999
        assert np.dot(merged.encode("tuned", text), expected) > 0.9999
        plain = base.encode([text], normalize_embeddings=True)[0]
        assert np.dot(switched.encode("plain", text), plain) > 0.9999  # the adapter is off for other domains
    assert np.abs(switched.encode("tuned", QUESTION) - switched.encode("plain", QUESTION)).max() > 1e-4


def test_onnx_encoders_come_from_the_config_match_torch_and_are_exported_once(adapter, onnx_cache):
    exports = sorted(onnx_cache.iterdir())
    assert len(exports) == 2  # the adapter's model (merged) and the base, each keyed by its weights
    modified = {path: path.stat().st_mtime_ns for path in exports}
    fp32 = encoders_for(onnx_cache, adapter, encoder="onnx")  # reused while the weights are unchanged
    assert {path: path.stat().st_mtime_ns for path in exports} == modified
    tuned, base = load_model(str(adapter)), load_model(None)
    for text in (QUESTION, UNRELATED, "ok"):
        assert np.dot(fp32.encode("tuned", text), tuned.encode([text], normalize_embeddings=True)[0]) > 0.9999
        assert np.dot(fp32.encode("plain", text), base.encode([text], normalize_embeddings=True)[0]) > 0.9999
    int8 = encoders_for(onnx_cache, adapter, encoder="onnx-int8", plain=False)
    assert len(list(onnx_cache.iterdir())) == 3  # int8 is a new export, beside the fp32 ones
    assert np.mean([np.dot(int8.encode("tuned", t), fp32.encode("tuned", t)) for t in (QUESTION, UNRELATED)]) > 0.98
    for encoders in (fp32, int8):
        encoders.close()


def test_an_onnx_graph_that_disagrees_with_its_model_is_refused_at_load(adapter, onnx_cache, tmp_path):
    import onnx
    from onnx import numpy_helper

    shutil.copytree(onnx_cache, tmp_path / "onnx")
    for export in (tmp_path / "onnx").iterdir():
        if json.loads((export / "cachetune_export.json").read_text())["model"] != str(adapter):
            continue  # the plain domain's export stays right
        graph = export / "onnx" / "model.onnx"
        model = onnx.load(str(graph))
        embeddings = max(model.graph.initializer, key=lambda tensor: np.prod(tensor.dims))  # the word embeddings
        rows = numpy_helper.to_array(embeddings)
        embeddings.CopyFrom(numpy_helper.from_array(rows[np.random.default_rng(0).permutation(len(rows))], embeddings.name))
        onnx.save(model, str(graph))  # a graph that loads and runs, but is no longer the adapter's model
    with pytest.raises(ModelError, match=r"model.onnx: cosine to torch mean .* below 0.99"):
        encoders_for(tmp_path / "onnx", adapter, encoder="onnx")


def test_concurrent_requests_are_batched_and_each_gets_its_own_vector(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from cachetune.cache.encoders import MicroBatcher
    from cachetune.cache_config import BatchingConfig

    model = load_model(None)
    sizes = []

    def encode(texts: list[str]) -> np.ndarray:
        sizes.append(len(texts))
        return model.encode(texts, normalize_embeddings=True)

    batcher = MicroBatcher(encode, BatchingConfig(max_batch=8))
    prompts = [
        f"How do I {verb} a {thing} in Python?"
        for verb in ("sort", "copy", "parse", "print", "hash")
        for thing in ("list", "dict", "set", "date")
    ]
    with ThreadPoolExecutor(16) as pool:
        vectors = list(pool.map(batcher, prompts))
    expected = model.encode(prompts, normalize_embeddings=True)
    assert all(np.dot(vector, want) > 0.9999 for vector, want in zip(vectors, expected))  # each request its own vector
    assert sum(sizes) == len(prompts) and max(sizes) > 1 and max(sizes) <= 8  # shared forward passes, none over max_batch
    sizes.clear()
    assert np.dot(batcher(prompts[0]), expected[0]) > 0.9999 and sizes == [1]  # alone: encoded at once, by itself
    batcher.close()


def test_milvus_store_keeps_the_same_promises(make_cache, tmp_path, clock):
    domains = {"coding": {"similarity_threshold": 0.85, "ttl_seconds": 60, "max_entries": 2, "eviction": "fifo"}}
    cache = make_cache(domains, backend_type="milvus", milvus={"uri": str(tmp_path / "milvus.db")})
    cache.store(QUESTION, "answer", "coding", tenant='acme" or tenant != "x')
    assert cache.check(REWORDED, "coding", tenant='acme" or tenant != "x').response == "answer"
    assert cache.check(REWORDED, "coding", tenant="other") is None
    assert cache.check(REWORDED, "coding") is None
    cache.store("How to read a CSV file with pandas?", "csv", "coding")
    cache.store("How do I merge two dicts?", "merge", "coding")  # full: the first stored goes (fifo)
    assert cache.entries("coding") == 2
    assert cache.check(REWORDED, "coding", tenant='acme" or tenant != "x') is None
    clock.now += 61
    assert cache.check("How do I merge two dicts?", "coding") is None


def unit_vectors(count: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_milvus_sees_every_row_past_the_query_window_after_a_restart(tmp_path):
    """More rows than one Milvus query returns (16,384): a restart must not reuse an id, and eviction must still
    find the oldest entry when it sits past the first 16,384 rows."""
    from cachetune.cache.milvus import NEVER_SERVED, MilvusStore
    from cachetune.cache.store import NEVER, NamespaceSettings, NewEntry
    from cachetune.cache_config import MilvusStoreConfig

    size = 17_000
    config = MilvusStoreConfig(uri=str(tmp_path / "milvus.db"))
    namespaces = {"coding": NamespaceSettings(max_entries=size, eviction="fifo")}
    store = MilvusStore(config, 8, namespaces)
    vectors = unit_vectors(size + 1, 8, 0)
    # Bulk rows as a counter would have numbered them; the highest id is the oldest entry.
    rows = [
        {"id": n, "tenant": "", "vector": vectors[n - 1].tolist(), "prompt": f"p{n}", "response": f"a{n}", "metadata": {},
         "created": float(size - n), "expires": NEVER, "last_used": float(size - n), "hits": 0, "served_similarity": NEVER_SERVED}
        for n in range(1, size + 1)
    ]  # fmt: skip
    for start in range(0, size, 4_000):
        store._client.insert("cachetune_coding", rows[start : start + 4_000])
    store.close()
    reopened = MilvusStore(config, 8, namespaces)
    new_id = reopened.add("coding", NewEntry("", vectors[-1], "the newest prompt", "the newest answer", float(size + 1)))
    assert not 1 <= new_id <= size
    assert reopened.count("coding", float(size + 1)) == size  # full: one went
    left = reopened._client.query("cachetune_coding", filter=f"id == {size}", output_fields=["id"])
    assert left == []  # the oldest, past the first 16,384 rows
    [(entry, similarity)] = reopened.similar("coding", "", vectors[-1], float(size + 2), 0.99, 1)
    assert entry.prompt == "the newest prompt" and similarity > 0.99
    reopened.close()


def test_milvus_ids_stay_unique_under_concurrent_stores(tmp_path):
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from cachetune.cache.milvus import MilvusStore
    from cachetune.cache.store import NamespaceSettings, NewEntry
    from cachetune.cache_config import MilvusStoreConfig

    store = MilvusStore(MilvusStoreConfig(uri=str(tmp_path / "milvus.db")), 8, {"coding": NamespaceSettings(10_000, "lru")})
    vectors = unit_vectors(800, 8, 1)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: a shared counter would race
    try:
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda n: store.add("coding", NewEntry("", vectors[n], f"p{n}", f"a{n}", 1.0)), range(800)))
    finally:
        sys.setswitchinterval(interval)
    assert len(set(ids)) == 800 and store.count("coding", 1.0) == 800
    store.close()
