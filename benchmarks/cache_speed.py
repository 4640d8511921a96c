"""Semantic cache speed and memory.

1. HTTP: `cachetune serve` in its own process, a second process (this one) sending check requests over
   loopback: latency p50/p99 one at a time, and throughput with several clients at once.
2. In-process lookup latency of the store at 10K, 100K and 1M entries, exact vs HNSW search. Vectors are
   random unit vectors of the model's dimension (384): we have no million real queries, and search cost
   does not depend on what the vectors mean; HNSW recall@1 against exact search is reported beside it.
3. Memory and encode latency per domain: adapters switched on one base model vs a merged copy per domain,
   each measured in a fresh process.

    .venv/bin/python benchmarks/cache_speed.py [--data ../shared/data] [--sizes 10000 100000 1000000]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml
from common import machine, save

DIM = 384
REPO = Path(__file__).resolve().parents[1]


def percentiles(milliseconds: list[float]) -> dict:
    return {"p50_ms": round(float(np.percentile(milliseconds, 50)), 3), "p99_ms": round(float(np.percentile(milliseconds, 99)), 3)}


def real_queries(data: Path, count: int) -> list[str]:
    rows = [json.loads(line)["question"] for line in (data / "medical" / "medquad-questions.jsonl").open()]
    rows += [json.loads(line)["title"] for line in (data / "programming" / "staqc-sql-titles.jsonl").open()]
    return list(dict.fromkeys(rows))[:count]


def http_benchmark(queries: list[str], stored: int, requests: int, clients: int) -> dict:
    import httpx

    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "cache.yaml"
        config.write_text(yaml.safe_dump({"semantic_cache": {"domains": {"general": {"similarity_threshold": 0.9}}}}))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("cachetune")), "serve", "--config", str(config), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                while True:
                    try:
                        client.get("/healthz")
                        break
                    except httpx.TransportError:
                        time.sleep(0.3)
                for prompt in queries[:stored]:
                    client.post("/v1/cache/store", json={"prompt": prompt, "response": "answer", "domain": "general"})
                mix = [queries[i % (2 * stored)] for i in range(requests)]  # half stored prompts (hits), half new (misses)
                timings = []
                for prompt in mix:
                    start = time.perf_counter()
                    client.post("/v1/cache/check", json={"prompt": prompt, "domain": "general"}).raise_for_status()
                    timings.append((time.perf_counter() - start) * 1000)

            def worker(prompts: list[str]) -> None:
                with httpx.Client(base_url=url, timeout=60) as own:
                    for prompt in prompts:
                        own.post("/v1/cache/check", json={"prompt": prompt, "domain": "general"}).raise_for_status()

            threads = [threading.Thread(target=worker, args=(mix[i::clients],)) for i in range(clients)]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait()
    return {
        "stored_entries": stored,
        "requests": requests,
        **percentiles(timings),
        "clients": clients,
        "throughput_rps": round(requests / seconds, 1),
    }


def lookup_benchmark(size: int, kind: str, queries: int = 300) -> dict:
    from cachetune.cache.index import AnnIndex, ExactIndex
    from cachetune.cache.memory import MemoryStore
    from cachetune.cache.store import Entry, NamespaceSettings

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((size, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = MemoryStore(DIM, {"n": NamespaceSettings(size + 1, "lru")}, index=kind)
    space = store._namespaces["n"]
    start = time.perf_counter()
    # Bulk load straight into the partition's index (the store's add() is one entry at a time).
    index = AnnIndex(DIM) if kind == "ann" else ExactIndex(DIM)
    if kind == "ann":
        index.add_many(np.arange(size, dtype=np.int64), vectors)
    else:
        for key in range(size):
            index.add(key, vectors[key])
    space.partitions[""] = index
    for key in range(size):
        space.entries[key] = Entry(key, "", "p", "r", 0.0, None)
        space.order.added(key)
    build = time.perf_counter() - start
    probes = vectors[rng.integers(0, size, queries)] + rng.normal(scale=0.02, size=(queries, DIM)).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    timings, found = [], []
    for probe in probes:
        start = time.perf_counter()
        entry, _ = store.lookup("n", "", probe, 1.0, 2.0)  # threshold 2: never a hit, nothing recorded
        timings.append((time.perf_counter() - start) * 1000)
        found.append(entry.id)
    exact = np.argmax(probes @ vectors.T, axis=1)
    return {
        "entries": size,
        "search": kind,
        **percentiles(timings),
        "recall_at_1": float(np.mean(np.array(found) == exact)),
        "build_seconds": round(build, 1),
    }


def encoder_memory(mode: str, domains: int, adapter: str) -> dict:
    """Runs in a fresh process: RSS after loading the cache's encoders, and encode latency per domain."""
    import peft  # noqa: F401  (libraries loaded first: only the models count below)
    import sentence_transformers  # noqa: F401

    from cachetune.cache.encoders import DomainEncoders

    before = memory_kib("VmRSS")
    models = {f"domain{i}": adapter for i in range(domains)}
    encoders = DomainEncoders(None, {**models, "base": None}, mode)
    after = memory_kib("VmRSS")
    names = list(models) + ["base"]
    for name in names:
        encoders.encode(name, "warm up")
    timings = []
    for i in range(200):
        start = time.perf_counter()
        encoders.encode(names[i % len(names)], "How do I reverse a list in Python without a copy?")
        timings.append((time.perf_counter() - start) * 1000)
    return {
        "mode": mode,
        "adapter_domains": domains,
        "peak_rss_mib": round(memory_kib("VmHWM") / 1024),
        "rss_for_encoders_mib": round((after - before) / 1024),
        **percentiles(timings),
    }


def memory_kib(field: str) -> int:
    """This process's resident (VmRSS) or peak resident (VmHWM) memory. Not getrusage's ru_maxrss: a child
    started from a large parent inherits the parent's figure there."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--encoders", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.encoders:
        print(json.dumps(encoder_memory(args.encoders[0], int(args.encoders[1]), args.encoders[2])))
        return
    results = {"benchmark": "cache_speed", "machine": machine()}
    queries = real_queries(args.data, 2_000)
    results["http"] = [http_benchmark(queries, stored=1_000, requests=400, clients=clients) for clients in (1, 8)]
    print(results["http"], flush=True)
    results["lookup"] = []
    for size in args.sizes:
        for kind in ("exact", "ann"):
            results["lookup"].append(lookup_benchmark(size, kind))
            print(results["lookup"][-1], flush=True)
    # The shipped programming adapter (LoRA r16 on every linear layer) stands in for each domain's.
    results["encoders"] = []
    for mode in ("switched", "merged"):
        for domains in (1, 4):
            command = [sys.executable, __file__, "--encoders", mode, str(domains), "programming"]
            output = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            results["encoders"].append(json.loads(output.stdout.strip().splitlines()[-1]))
            print(results["encoders"][-1], flush=True)
    http = "\n".join(
        f"| {r['clients']} | {r['stored_entries']:,} | {r['p50_ms']} | {r['p99_ms']} | {r['throughput_rps']} |" for r in results["http"]
    )
    lookup = "\n".join(
        f"| {r['entries']:,} | {r['search']} | {r['p50_ms']} | {r['p99_ms']} | {r['recall_at_1']:.3f} | {r['build_seconds']} |"
        for r in results["lookup"]
    )
    encoders = "\n".join(
        f"| {r['mode']} | {r['adapter_domains']} + base | {r['rss_for_encoders_mib']} | {r['peak_rss_mib']} | {r['p50_ms']} | {r['p99_ms']} |"
        for r in results["encoders"]
    )
    markdown = f"""# cache speed and memory (all-MiniLM-L6-v2, {results["machine"]["cpus"]} CPUs, no GPU)

## HTTP check over loopback, from a second process (half hits, half misses, real queries)

| clients | stored entries | p50 ms | p99 ms | checks/s |
|---:|---:|---:|---:|---:|
{http}

Each check embeds the prompt (the model dominates: ~15 ms on two cores) and searches the store.

## In-process lookup (store.lookup), random unit vectors of dimension {DIM}

| entries | search | p50 ms | p99 ms | recall@1 vs exact | build s |
|---:|---|---:|---:|---:|---:|
{lookup}

## Encoders per domain: adapters switched on one base vs a merged copy per domain

| mode | domains | RSS for encoders (MiB) | peak RSS (MiB) | encode p50 ms | encode p99 ms |
|---|---|---:|---:|---:|---:|
{encoders}
"""
    save("cache_speed", results, markdown)


if __name__ == "__main__":
    main()
