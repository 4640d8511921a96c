"""Soak: many clients checking and storing at once over several domains and tenants, for a set time.

    .venv/bin/python benchmarks/soak.py [--seconds 300] [--clients 16] [--tenants 8]

Starts `cachetune serve` on loopback (the shipped programming adapter's domain and a base-model domain), then
runs `clients` threads that each, in a loop, store (30%) or check (70%) a prompt of a fixed pool (a check uses
a rewording half the time), under one of `tenants` tenants. Every stored answer names its tenant, domain and
prompt, so every hit is checked: served to the tenant that stored it (else a cross-tenant hit), and the answer
stored for the prompt it says it matched. Reports requests, server errors (5xx), transport errors, hits,
cross-tenant hits, latency p50/p99 per 30-second window, and the server's resident memory at start and end.
Results: results/soak.{json,md}.
"""

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import yaml
from common import machine, save

REPO = Path(__file__).resolve().parents[1]
VERBS = ("sort", "reverse", "copy", "parse", "print", "hash", "filter", "merge", "split", "flatten")
THINGS = ("list", "dict", "set", "string", "date", "tuple", "array", "file", "json object", "dataframe")


def prompts() -> list[tuple[str, str]]:
    """(stored form, a rewording) of each question in the pool."""
    return [(f"How do I {verb} a {thing} in Python?", f"How can I {verb} a {thing} in python?") for verb in VERBS for thing in THINGS]


def soak(url: str, seconds: float, clients: int, domains: list[str], tenants: int, window: float = 30.0) -> dict:
    """Drive the service at `url`; return the counts and the latency per window (see the module's docstring)."""
    pool = prompts()
    lock = threading.Lock()
    counts = {"requests": 0, "server_errors": 0, "transport_errors": 0, "hits": 0, "cross_tenant_hits": 0, "wrong_answers": 0, "stores": 0}
    timings: list[tuple[float, float]] = []
    started = time.time()

    def client(number: int) -> None:
        rng = random.Random(number)
        tenant = f"tenant-{number % tenants}"
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.time() - started < seconds:
                domain = rng.choice(domains)
                stored, reworded = rng.choice(pool)
                storing = rng.random() < 0.3
                body = {"prompt": stored if storing or rng.random() < 0.5 else reworded, "domain": domain, "tenant": tenant}
                if storing:
                    body["response"] = f"{tenant}|{domain}|{stored}"
                began = time.perf_counter()
                try:
                    response = http.post("/v1/cache/store" if storing else "/v1/cache/check", json=body)
                except httpx.TransportError:
                    with lock:
                        counts["transport_errors"] += 1
                    continue
                elapsed = (time.perf_counter() - began) * 1000
                with lock:
                    counts["requests"] += 1
                    timings.append((time.time() - started, elapsed))
                    counts["server_errors"] += response.status_code >= 500
                    if response.status_code != 200:
                        continue
                    result = response.json()
                    counts["stores"] += storing
                    if not storing and result["hit"]:
                        counts["hits"] += 1
                        owner, owner_domain, owner_prompt = result["response"].split("|", 2)
                        counts["cross_tenant_hits"] += owner != tenant or owner_domain != domain
                        counts["wrong_answers"] += owner_prompt != result["prompt"]

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    windows = []
    for start in np.arange(0, seconds, window):
        inside = [ms for at, ms in timings if start <= at < start + window]
        if inside:
            p50, p99 = np.percentile(inside, [50, 99])
            windows.append(
                {"from_s": float(start), "requests": len(inside), "p50_ms": round(float(p50), 2), "p99_ms": round(float(p99), 2)}
            )
    return {**counts, "seconds": seconds, "clients": clients, "tenants": tenants, "windows": windows}


def main() -> None:
    import psutil

    sys.path.insert(0, str(REPO / "tests"))
    from servers import CacheService

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--tenants", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "cache.yaml"
        domains = {"coding": {"embedding_model_path": "programming", "similarity_threshold": 0.9}, "general": {"similarity_threshold": 0.9}}
        config.write_text(yaml.safe_dump({"semantic_cache": {"domains": domains}}))
        service = CacheService(config)
        process = psutil.Process(service.process.pid)
        rss_start = process.memory_info().rss
        result = soak(service.url, args.seconds, args.clients, list(domains), args.tenants)
        rss_end = process.memory_info().rss
        service.stop()
    result |= {"server_rss_mib_start": round(rss_start / 2**20), "server_rss_mib_end": round(rss_end / 2**20), "machine": machine()}
    rows = "\n".join(f"| {w['from_s']:.0f} | {w['requests']} | {w['p50_ms']} | {w['p99_ms']} |" for w in result["windows"])
    markdown = f"""# Soak: {args.clients} clients, {args.tenants} tenants, 2 domains, {args.seconds:.0f} s (loopback, {result["machine"]["cpus"]} CPUs)

- requests {result["requests"]}, stores {result["stores"]}, hits {result["hits"]}
- server errors (5xx) {result["server_errors"]}, transport errors {result["transport_errors"]}
- cross-tenant hits {result["cross_tenant_hits"]}, answers for another prompt than the one matched {result["wrong_answers"]}
- server resident memory {result["server_rss_mib_start"]} MiB at start, {result["server_rss_mib_end"]} MiB at the end

| from s | requests | p50 ms | p99 ms |
|---:|---:|---:|---:|
{rows}
"""
    save("soak", result, markdown)


if __name__ == "__main__":
    main()
