"""Semantic cache speed, memory and encoder parity, on this machine.

    .venv/bin/python benchmarks/cache_speed.py [--section http stores ann encoders parity ...] [--ann-vectors realistic random]

Sections (each writes its part of results/cache_speed.json; the Markdown shows every part there is):
- http: `cachetune serve` in its own process, this process sending /v1/cache/check over loopback to the shipped
  programming adapter's domain: new wordings (never stored: the encoder runs) and exact repeats (the exact tier)
  as separate rows, 1 client (p50/p99) and 16 concurrent clients (throughput, p99), for each ENCODER:STORE case
  (torch without batching, ONNX fp32 and int8 micro-batched; the embedded store or Redis).
- stores: lookup p50/p99 from one thread and from 8 concurrent threads at 10K and 100K entries in the embedded
  store, Milvus Lite, a Milvus 2.3 server (per consistency level) and Redis 8 (random unit vectors), with memory
  per 100K entries where the store reports it; then Redis at several HNSW settings on 100K realistic vectors.
- ann: HNSW (usearch) recall@1 against exact search (right when its similarity equals the exact best: a
  duplicate vector is as right as the one exact search returned), lookup p50/p99, build time and bytes per entry at 100K and 1M
  entries, on random unit vectors and on realistic ones (see `realistic_vectors`), for several parameters.
- encoders: memory and encode latency of adapters switched on one base against a merged copy per domain.
- parity: pair AP of both shipped adapters on their held-out test pairs with each encoder.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from common import REPO, RESULTS, machine, percentiles, save, table
from measure import http_workload, real_texts
from traffic import http_benchmark

from cachetune.cache_config import HnswConfig, RedisIndexConfig

# Redis HNSW settings measured at 100K realistic entries: the old defaults (16/200/64), then wider graphs and searches
REDIS_INDEXES = [
    {"m": 16, "ef_construction": 200, "ef_runtime": 64},
    {"m": 16, "ef_construction": 200, "ef_runtime": 256},
    {"m": 32, "ef_construction": 256, "ef_runtime": 256},
    {"m": 32, "ef_construction": 400, "ef_runtime": 512},
]


def redis_index_defaults() -> dict:
    return RedisIndexConfig().model_dump(include={"m", "ef_construction", "ef_runtime"})


DIM = 384


# --- http --------------------------------------------------------------------------------------------------------


# --- stores ------------------------------------------------------------------------------------------------------


def unit_vectors(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, DIM), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def memory_kib(field: str = "VmRSS") -> int:
    """This process's resident (VmRSS) or peak resident (VmHWM) memory, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def store_benchmark(kind: str, vectors: np.ndarray, probes: np.ndarray, folder: Path, urls: dict, options: dict | None = None) -> dict:
    """Lookups (a candidate: `similar(..., limit 1)`) from one thread (p50/p99, recall@1 against exact search) and
    from 8, after loading `vectors` into a `kind` store: memory, milvus (Lite), milvus-server (a Milvus 2.3 server on
    loopback, at `options`' consistency level) or redis (with `options`' M / EF_CONSTRUCTION / EF_RUNTIME)."""
    from cachetune.cache.store import NamespaceSettings

    size = len(vectors)
    namespaces = {"bench": NamespaceSettings(size + 1, "lru")}
    rss_before, start = memory_kib(), time.perf_counter()
    store, memory = _loaded_store(kind, vectors, namespaces, folder, urls, options or {})
    load_seconds = time.perf_counter() - start
    if kind == "memory":
        memory = (memory_kib() - rss_before) * 1024 * 100_000 / size
    exact = np.argmax(probes @ vectors.T, axis=1)
    store.similar("bench", "", probes[0], 2.0, -1.0, 1)  # warm-up
    single, found = [], []
    for probe in probes:
        began = time.perf_counter()
        [(entry, _)] = store.similar("bench", "", probe, 2.0, -1.0, 1)  # a lookup's candidate; nothing written
        single.append((time.perf_counter() - began) * 1000)
        found.append(entry.prompt)
    timings = []

    def timed(probe: np.ndarray) -> None:
        began = time.perf_counter()
        store.similar("bench", "", probe, 2.0, -1.0, 1)
        timings.append((time.perf_counter() - began) * 1000)

    began = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(timed, np.concatenate([probes, probes])))
    seconds = time.perf_counter() - began
    store.close()
    return {
        "store": store_label(kind, options),
        "entries": size,
        "one_thread": percentiles(single),
        "eight_threads": {**percentiles(timings), "lookups_per_second": round(2 * len(probes) / seconds, 1)},
        "recall_at_1": float(np.mean([prompt == f"prompt {n}" for prompt, n in zip(found, exact)])),
        "load_seconds": round(load_seconds, 1),
        "bytes_per_100k_entries": round(memory) if memory is not None else None,
    }


def _loaded_store(kind: str, vectors: np.ndarray, namespaces: dict, folder: Path, urls: dict, options: dict):
    """A store of `kind` holding `vectors` (prompt n for vector n), and the bytes per 100K entries where it says."""
    from cachetune.cache.memory import MemoryStore
    from cachetune.cache.milvus import NEVER_SERVED, MilvusStore
    from cachetune.cache.redis import RedisStore
    from cachetune.cache.store import NEVER, NewEntry
    from cachetune.cache_config import MemoryStoreConfig, MilvusStoreConfig, RedisIndexConfig, RedisStoreConfig

    if kind == "memory":
        store = MemoryStore(DIM, namespaces, MemoryStoreConfig())
    elif kind.startswith("milvus"):
        uri = str(folder / f"milvus-{len(vectors)}.db") if kind == "milvus" else urls["milvus"]
        store = MilvusStore(
            MilvusStoreConfig(
                uri=uri, collection_prefix=f"bench{len(vectors)}_", consistency_level=options.get("consistency_level", "Strong")
            ),
            DIM,
            namespaces,
        )
        rows = [
            {"id": n + 1, "tenant": "", "vector": v.tolist(), "prompt": f"prompt {n}", "response": "answer", "metadata": {},
             "created": 1.0, "expires": NEVER, "last_used": 1.0, "hits": 0, "served_similarity": NEVER_SERVED}
            for n, v in enumerate(vectors)
        ]  # fmt: skip
        for first in range(0, len(rows), 5_000):  # bulk rows: Milvus' own insert path, not one add() round trip each
            store._client.insert(f"bench{len(vectors)}_bench", rows[first : first + 5_000])
        return store, None
    else:
        import redis

        client = redis.Redis.from_url(urls["redis"])
        client.flushall()
        used_before = client.info("memory")["used_memory"]
        store = RedisStore(RedisStoreConfig(url=urls["redis"], index=RedisIndexConfig(**options)), DIM, namespaces)
    for n, vector in enumerate(vectors):
        store.add("bench", NewEntry("", vector, f"prompt {n}", "answer", 1.0))
    if kind == "redis":
        return store, (client.info("memory")["used_memory"] - used_before) * 100_000 / len(vectors)
    return store, None


def store_label(kind: str, options: dict) -> str:
    if kind == "redis":
        return f"redis (M {options['m']}, EF_CONSTRUCTION {options['ef_construction']}, EF_RUNTIME {options['ef_runtime']})"
    if "consistency_level" in options:
        tick = "" if options["tick_ms"] == 200 else f", time tick {options['tick_ms']} ms"
        return f"{kind} ({options['consistency_level']}{tick})"
    return kind


def probes_near(vectors: np.ndarray, count: int = 300) -> np.ndarray:
    """Stored vectors moved a little: lookups whose exact nearest entry is known."""
    rng = np.random.default_rng(1)
    probes = vectors[rng.integers(0, len(vectors), count)] + np.random.default_rng(2).normal(scale=0.02, size=(count, DIM))
    return (probes / np.linalg.norm(probes, axis=1, keepdims=True)).astype(np.float32)


# --- ann ---------------------------------------------------------------------------------------------------------


def realistic_vectors(data: Path, count: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """`count` vectors that resemble a cache's prompts, and 1,000 probes that reword stored ones.

    The real questions of ../shared/data (about 110K distinct texts) are embedded by all-MiniLM-L6-v2. Each
    further vector is a real one moved by noise drawn in the principal subspace of the real vectors (its top 64
    components, each with its own spread), scaled so that its cosine to the real one is about 0.9, the similarity
    of a rewording; about 8 such neighbours per real question make the dense clusters a cache holds. A probe is a
    stored vector moved the same way to a cosine of about 0.95 (a repeat of a stored prompt, reworded); the true
    nearest entry is found by exact search.
    """
    real_file = cache / "real_vectors.npy"
    if not real_file.is_file():
        from cachetune.models import load_model

        texts = real_texts(data)
        vectors = load_model(None).encode(texts, batch_size=256, normalize_embeddings=True, convert_to_numpy=True)
        cache.mkdir(parents=True, exist_ok=True)
        np.save(real_file, vectors.astype(np.float32))
    real = np.load(real_file)
    rng = np.random.default_rng(0)
    centred = real - real.mean(axis=0)
    _, spread, basis = np.linalg.svd(centred[rng.choice(len(real), min(20_000, len(real)), replace=False)], full_matrices=False)
    basis, spread = basis[:64], spread[:64] / np.sqrt(min(20_000, len(real)))

    def move(vectors: np.ndarray, cosine: float) -> np.ndarray:
        noise = (rng.standard_normal((len(vectors), 64)).astype(np.float32) * spread) @ basis
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        angle = np.arccos(cosine) * rng.uniform(0.7, 1.3, size=(len(vectors), 1))
        # the component of the noise orthogonal to each vector, turned by `angle`
        noise -= (noise * vectors).sum(axis=1, keepdims=True) * vectors
        noise /= np.maximum(np.linalg.norm(noise, axis=1, keepdims=True), 1e-12)
        return (np.cos(angle) * vectors + np.sin(angle) * noise).astype(np.float32)

    extra = count - len(real)
    vectors = np.concatenate([real[:count], move(real[rng.integers(0, len(real), max(extra, 0))], 0.9)]) if extra > 0 else real[:count]
    probes = move(vectors[rng.integers(0, len(vectors), 1_000)], 0.95)
    return vectors, probes


ANN_CASE = ("entries", "vectors", "connectivity", "expansion_add")


def ann_benchmark(vectors: np.ndarray, probes: np.ndarray, kind: str, hnsw: HnswConfig, searches: list[int]) -> list[dict]:
    from cachetune.cache.index import AnnIndex

    best = np.empty(len(probes), dtype=np.float32)  # the exact nearest similarity: a copy of it is as right
    for first in range(0, len(probes), 100):
        best[first : first + 100] = np.max(probes[first : first + 100] @ vectors.T, axis=1)
    index = AnnIndex(DIM, hnsw)
    start = time.perf_counter()
    index.add_many(np.arange(len(vectors)), vectors)  # as the cache converts a namespace: one thread
    build = time.perf_counter() - start
    rows = []
    for expansion_search in searches:
        index._index.expansion_search = expansion_search
        timings, found = [], []
        for probe in probes:
            start = time.perf_counter()
            found.append(index.search(probe, 1)[0][0])
            timings.append((time.perf_counter() - start) * 1000)
        rows.append(
            {
                "vectors": kind,
                "entries": len(vectors),
                "connectivity": hnsw.connectivity,
                "expansion_add": hnsw.expansion_add,
                "expansion_search": expansion_search,
                "recall_at_1": float(np.mean((probes * vectors[np.array(found)]).sum(axis=1) >= best - 1e-5)),
                **percentiles(timings),
                "build_seconds": round(build, 1),
                "bytes_per_entry": round(index._index.memory_usage / len(vectors)),
            }
        )
        print(rows[-1], flush=True)
    return rows


# --- encoders and parity -----------------------------------------------------------------------------------------


def encoder_memory(mode: str, domains: int, encoder: str) -> dict:
    """Runs in a fresh process: RSS after loading the cache's encoders, and encode latency per domain."""
    import peft  # noqa: F401  (libraries loaded first: only the models count below)
    import sentence_transformers  # noqa: F401

    from cachetune.cache.encoders import DomainEncoders
    from cachetune.cache_config import CacheConfig

    before = memory_kib()
    config = {f"domain{i}": {"embedding_model_path": "programming", "encoder": encoder} for i in range(domains)}
    encoders = DomainEncoders(CacheConfig(domains={**config, "base": {"encoder": encoder}}, adapter_mode=mode))
    after = memory_kib()
    names = [*config, "base"]
    timings = []
    for i in range(200):
        start = time.perf_counter()
        encoders.encode(names[i % len(names)], "How do I reverse a list in Python without a copy?")
        timings.append((time.perf_counter() - start) * 1000)
    encoders.close()
    return {
        "mode": mode if encoder == "torch" else "-",
        "encoder": encoder,
        "adapter_domains": domains,
        "rss_for_encoders_mib": round((after - before) / 1024),
        "peak_rss_mib": round(memory_kib("VmHWM") / 1024),
        **percentiles(timings),
    }


def parity_benchmark() -> list[dict]:
    """Pair AP of each shipped adapter on its held-out test pairs, per encoder, and the fp32 graph's cosine to torch."""
    from measure import domain_data

    from cachetune.cache.encoders import DomainEncoders
    from cachetune.cache_config import CacheConfig
    from cachetune.metrics import average_precision
    from cachetune.records import Pair, read_records

    rows = []
    for adapter, domain in (("programming", "programming"), ("medical", "medical")):
        for test_name, path in domain_data(domain).tests.items():
            pairs = read_records(path, Pair)
            texts = list(dict.fromkeys(t for p in pairs for t in (p.query1, p.query2)))
            vectors = {}
            for encoder in ("torch", "onnx", "onnx-int8"):
                encoders = DomainEncoders(CacheConfig(domains={"d": {"embedding_model_path": adapter, "encoder": encoder}}))
                vectors[encoder] = {text: encoders.encode("d", text) for text in texts}
                encoders.close()
            labels = np.array([p.label for p in pairs])
            row = {"adapter": adapter, "test": test_name, "pairs": len(pairs)}
            for encoder, vector_of in vectors.items():
                row[f"ap_{encoder}"] = average_precision(labels, np.array([vector_of[p.query1] @ vector_of[p.query2] for p in pairs]))
            for encoder in ("onnx", "onnx-int8"):
                cosines = [float(vectors[encoder][t] @ vectors["torch"][t]) for t in texts]
                row[f"cosine_{encoder}_min"], row[f"cosine_{encoder}_mean"] = min(cosines), float(np.mean(cosines))
            rows.append(row)
            print(row, flush=True)
    return rows


# --- report ------------------------------------------------------------------------------------------------------


def _store_row(r: dict) -> str:
    mb = f"{r['bytes_per_100k_entries'] / 1e6:.0f}" if r["bytes_per_100k_entries"] else "not reported"
    one, eight = r["one_thread"], r["eight_threads"]
    cells = [r["store"], f"{r['entries']:,}", one["p50_ms"], one["p99_ms"], eight["p50_ms"], eight["p99_ms"], eight["lookups_per_second"]]
    return "| " + " | ".join(str(c) for c in [*cells, f"{r['recall_at_1']:.3f}", mb]) + " |"


def _http_markdown(results: dict) -> list[str]:
    lines = [
        "Stored: 1,000 real questions and 1,200 CoNaLa intents. New wordings: checks of prompts never stored, half of them",
        "the annotators' rewrites of stored intents, half other real questions, each checked once (the encoder runs for",
        "every one); exact repeats: checks of stored prompts (the exact tier answers without the encoder). 1 client: 400",
        "checks one after another; 16 clients: 2,000 checks shared between them. Client and server share the machine's",
        "cores. Targets (new wordings, ONNX int8, embedded store): 1 client p50 <= 3 ms; 16 clients >= 600 checks/s with",
        "p99 <= 50 ms.",
        "",
    ]
    header = [
        "store",
        "encoder",
        "micro-batching",
        "checks",
        "1 client p50 ms",
        "1 client p99 ms",
        "16 clients checks/s",
        "16 clients p99 ms",
    ]
    rows = []
    for r in (r for r in results["http"] if "new_wordings" in r):  # rows measured before the new wordings' split are not shown
        batching = "off (max_batch 1)" if r["max_batch"] == 1 else f"max_batch {r['max_batch']}"
        for kind in ("new_wordings", "exact_repeats"):
            one, many = r[kind]["one_client"], r[kind]["sixteen_clients"]
            rows.append(
                [
                    r["backend"],
                    r["encoder"],
                    batching,
                    kind.replace("_", " "),
                    one["p50_ms"],
                    one["p99_ms"],
                    many["checks_per_second"],
                    many["p99_ms"],
                ]
            )
    return [*lines, *table(header, rows)]


STORE_HEADER = [
    "| store | entries | 1 thread p50 ms | p99 ms | 8 threads p50 ms | p99 ms | lookups/s | recall@1 | MB per 100K entries |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
]


def _stores_markdown(results: dict) -> list[str]:
    return [*STORE_HEADER, *(_store_row(r) for r in results["stores"])]


def _redis_recall_markdown(results: dict) -> list[str]:
    target = "Target: recall@1 >= 0.99 with p99 <= 5 ms from one client. Recall@1: the entry returned is the exact nearest."
    return [target, "", *STORE_HEADER, *(_store_row(r) for r in results["redis_recall"])]


def _ann_markdown(results: dict) -> list[str]:
    lines = [
        "Realistic vectors: see `realistic_vectors` in this script. Recall@1: the result's similarity equals the exact best.",
        "Target at 1M realistic entries: recall@1 >= 0.99, p99 <= 10 ms.",
        "",
    ]
    header = ["vectors", "entries", "M", "ef add", "ef search", "recall@1", "p50 ms", "p99 ms", "build s", "bytes/entry"]
    keys = ["vectors", "entries", "connectivity", "expansion_add", "expansion_search", "recall_at_1", "p50_ms", "p99_ms", "build_seconds"]
    rows = [
        [f"{r[k]:,}" if k == "entries" else f"{r[k]:.3f}" if k == "recall_at_1" else r[k] for k in keys] + [r["bytes_per_entry"]]
        for r in results["ann"]
    ]
    return [*lines, *table(header, rows)]


def _encoders_markdown(results: dict) -> list[str]:
    header = ["encoder", "torch mode", "adapter domains", "RSS for encoders (MiB)", "peak RSS (MiB)", "encode p50 ms", "encode p99 ms"]
    keys = ["encoder", "mode", "adapter_domains", "rss_for_encoders_mib", "peak_rss_mib", "p50_ms", "p99_ms"]
    return table(header, [[f"{r[k]} + base" if k == "adapter_domains" else r[k] for k in keys] for r in results["encoders"]])


def _parity_markdown(results: dict) -> list[str]:
    header = ["adapter", "test", "pairs", "AP torch", "AP onnx", "AP onnx-int8", "fp32 cosine min", "int8 cosine mean / min"]
    rows = [
        [
            r["adapter"],
            r["test"],
            r["pairs"],
            f"{r['ap_torch']:.4f}",
            f"{r['ap_onnx']:.4f}",
            f"{r['ap_onnx-int8']:.4f}",
            f"{r['cosine_onnx_min']:.5f}",
        ]
        + [f"{r['cosine_onnx-int8_mean']:.4f} / {r['cosine_onnx-int8_min']:.4f}"]
        for r in results["parity"]
    ]
    return table(header, rows)


# Each section's heading and table writer, in the order the Markdown shows them
SECTIONS_MARKDOWN = {
    "http": ("HTTP check over loopback (shipped programming adapter)", _http_markdown),
    "stores": ("Store lookup (random unit vectors; 8 threads in one process)", _stores_markdown),
    "redis_recall": (
        "Redis HNSW settings at 100K realistic entries (see `realistic_vectors`; one Redis 8 + RediSearch 2.10)",
        _redis_recall_markdown,
    ),
    "ann": ("HNSW (usearch): recall@1 against exact search, lookup latency, build and memory", _ann_markdown),
    "encoders": ("Encoders per domain (fresh process each)", _encoders_markdown),
    "parity": (
        "Encoder parity: pair AP on held-out test pairs (targets: int8 within 0.005 of torch; fp32 cosine >= 0.9999)",
        _parity_markdown,
    ),
}


def markdown(results: dict) -> str:
    lines = [f"# cache speed, memory and parity ({results['machine']['cpus']} CPUs, no GPU; each section names its CPU)", ""]
    cpu_of = results.get("cpu_of_section", {})  # sections are re-measured one at a time, sometimes on another CPU kind
    for key, (heading, section_lines) in SECTIONS_MARKDOWN.items():
        if key in results:
            cpu = cpu_of.get("stores" if key == "redis_recall" else key, "an unrecorded CPU")
            lines += [f"## {heading} on {cpu}", "", *section_lines(results), ""]
    return "\n".join(lines)


def run_http(args: argparse.Namespace, results: dict, work: Path) -> None:
    from servers import RedisServer

    workload = http_workload(args.data)
    redis = RedisServer(work / "redis-http")
    try:  # a re-run replaces the rows of the cases it measures, keeping the others
        results["http"] = [
            r for r in results.get("http", []) if "new_wordings" in r and f"{r['encoder']}:{r['backend']}" not in args.http_cases
        ]
        for encoder, backend in (case.split(":") for case in args.http_cases):
            results["http"].append(http_benchmark(workload, encoder, 1 if encoder == "torch" else 32, backend, redis.url))
            save(args.save_as, results, markdown(results))
    finally:
        redis.stop()


def store_options(kind: str, args: argparse.Namespace) -> list[dict]:
    """The settings each store kind is measured at: Redis at the config's index defaults, a Milvus server at each
    consistency level asked for."""
    if kind == "redis":
        return [redis_index_defaults()]
    return (
        [{"consistency_level": level, "tick_ms": args.milvus_tick_ms} for level in args.milvus_consistency]
        if kind == "milvus-server"
        else [{}]
    )


def run_stores(args: argparse.Namespace, results: dict, work: Path) -> None:
    from servers import MilvusServer, RedisServer

    redis, milvus = RedisServer(work / "redis"), MilvusServer(work / "milvus-server", args.milvus_tick_ms)
    urls = {"redis": redis.url, "milvus": milvus.url}
    try:  # a re-run replaces the rows it measures (--store-kinds, --store-sizes, --redis-indexes), keeping the others
        labels = {store_label(kind, options) for kind in args.store_kinds for options in store_options(kind, args)}
        results["stores"] = [r for r in results.get("stores", []) if not (r["store"] in labels and r["entries"] in args.store_sizes)]
        for size in args.store_sizes:
            vectors = unit_vectors(size, 0)
            for kind in args.store_kinds:
                for options in store_options(kind, args):
                    results["stores"].append(store_benchmark(kind, vectors, probes_near(vectors), work, urls, options))
                    save(args.save_as, results, markdown(results))  # each row kept as soon as it is measured
        if not args.redis_indexes:
            return
        vectors, probes = realistic_vectors(args.data, 100_000, work)  # how the index settings trade recall for latency
        for index in (REDIS_INDEXES[i] for i in args.redis_indexes):
            label = store_label("redis", index)
            results["redis_recall"] = [r for r in results.get("redis_recall", []) if r["store"] != label]
            results["redis_recall"].append(store_benchmark("redis", vectors, probes[:300], work, urls, index))
            save(args.save_as, results, markdown(results))
    finally:
        redis.stop()
        milvus.stop()


def run_ann(args: argparse.Namespace, results: dict, work: Path) -> None:
    results.setdefault("ann", [])
    for size in args.ann_sizes:
        for kind in args.ann_vectors:
            vectors, probes = realistic_vectors(args.data, size, work) if kind == "realistic" else (unit_vectors(size, 0), None)
            if probes is None:
                probes = unit_vectors(1_000, 1) * 0.2 + vectors[np.random.default_rng(2).integers(0, size, 1_000)]
                probes = (probes / np.linalg.norm(probes, axis=1, keepdims=True)).astype(np.float32)
            # a re-run replaces only the rows of its own case, so cases can be measured one at a time
            case = (size, kind, args.ann_connectivity, args.ann_expansion_add)
            results["ann"] = [row for row in results["ann"] if tuple(row[key] for key in ANN_CASE) != case]
            hnsw = HnswConfig(connectivity=args.ann_connectivity, expansion_add=args.ann_expansion_add)
            results["ann"] += ann_benchmark(vectors, probes, kind, hnsw, [64, 128, 256, 512])
            save(args.save_as, results, markdown(results))


def run_encoders(args: argparse.Namespace, results: dict, work: Path) -> None:
    results["encoders"] = []
    for encoder, mode, domains in (("torch", "switched", 4), ("torch", "merged", 4), ("onnx", "merged", 4), ("onnx-int8", "merged", 4)):
        command = [sys.executable, __file__, "--encoders", mode, str(domains), encoder]
        output = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        results["encoders"].append(json.loads(output.stdout.strip().splitlines()[-1]))


def run_parity(args: argparse.Namespace, results: dict, work: Path) -> None:
    results["parity"] = parity_benchmark()


SECTIONS = {"http": run_http, "stores": run_stores, "ann": run_ann, "encoders": run_encoders, "parity": run_parity}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--section", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument(
        "--http-cases", nargs="+", default=["torch:memory", "onnx:memory", "onnx-int8:memory", "onnx-int8:redis"], help="ENCODER:STORE"
    )
    parser.add_argument("--save-as", default="cache_speed", help="results/NAME.{json,md} (another name keeps cache_speed's as it is)")
    parser.add_argument("--store-sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--store-kinds",
        nargs="+",
        choices=["memory", "milvus", "milvus-server", "redis"],
        default=["memory", "milvus", "milvus-server", "redis"],
    )
    levels = ["Strong", "Session", "Bounded", "Eventually"]
    parser.add_argument(
        "--milvus-consistency", nargs="+", choices=levels, default=["Strong", "Bounded"], help="a Milvus server row per level"
    )
    parser.add_argument("--milvus-tick-ms", type=int, default=200, help="the Milvus server's proxy timeTickInterval (its default: 200)")
    parser.add_argument(
        "--redis-indexes", type=int, nargs="*", default=list(range(len(REDIS_INDEXES))), help="which of REDIS_INDEXES (none: skip)"
    )
    parser.add_argument("--ann-sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--ann-vectors", nargs="+", choices=["realistic", "random"], default=["realistic", "random"])
    parser.add_argument("--ann-connectivity", type=int, default=HnswConfig().connectivity)
    parser.add_argument("--ann-expansion-add", type=int, default=HnswConfig().expansion_add)
    parser.add_argument("--encoders", nargs=3, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    if args.encoders:
        print(json.dumps(encoder_memory(args.encoders[0], int(args.encoders[1]), args.encoders[2])))
        return
    path = RESULTS / f"{args.save_as}.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["machine"] = machine()
    results.setdefault("cpu_of_section", {}).update({section: results["machine"]["cpu_model"] for section in args.section})
    for section in args.section:
        SECTIONS[section](args, results, REPO / "runs" / "cache_speed")
        save(args.save_as, results, markdown(results))


if __name__ == "__main__":
    main()
