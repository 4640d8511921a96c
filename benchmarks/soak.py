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
import tempfile
from pathlib import Path

import yaml
from common import machine, save
from servers import CacheService
from traffic import soak


def main() -> None:
    import psutil

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
