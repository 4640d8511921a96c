"""Traffic for a running `cachetune serve`: the soak's concurrent clients, and the HTTP check benchmark.

Used by benchmarks/soak.py, benchmarks/cache_speed.py, experiments/decision.py and tests/test_trust.py.
"""

import os
import random
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import yaml
from harness import REPO, percentiles
from servers import CacheService

VERBS = ("sort", "reverse", "copy", "parse", "print", "hash", "filter", "merge", "split", "flatten")
THINGS = ("list", "dict", "set", "string", "date", "tuple", "array", "file", "json object", "dataframe")


def prompts() -> list[tuple[str, str]]:
    """(stored form, a rewording) of each question in the pool."""
    return [(f"How do I {verb} a {thing} in Python?", f"How can I {verb} a {thing} in python?") for verb in VERBS for thing in THINGS]


def soak(url: str, seconds: float, clients: int, domains: list[str], tenants: int, window: float = 30.0) -> dict:
    """Drive the service at `url`; return the counts and the latency per window (see benchmarks/soak.py)."""
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


def http_benchmark(
    workload: dict[str, list[str]],
    encoder: str,
    max_batch: int,
    backend: str = "memory",
    redis_url: str | None = None,
    verify: dict | None = None,
) -> dict:
    """`cachetune serve` on the shipped programming adapter's domain with `workload["stored"]` stored, then checks over
    HTTP from one client (p50/p99) and from 16 concurrent ones (throughput, p99) of two kinds:
    - new wordings (`workload["new_single"]`, `workload["new_many"]`: prompts never stored, half of them rewordings of
      stored ones, each checked once): the encoder runs for every check;
    - exact repeats of stored prompts: the exact tier answers without the encoder.

    Raises:
        RuntimeError: the service did not start.
    """
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "cache.yaml"
        domain = {"embedding_model_path": "programming", "similarity_threshold": 0.9, "encoder": encoder}
        if verify is not None:
            domain["verify"] = verify  # the decision's guards (experiments/decision.py)
        store = (
            {"backend_type": "redis", "redis": {"url": redis_url, "key_prefix": f"bench{os.getpid()}{encoder}:"}}
            if backend == "redis"
            else {}
        )
        settings = {"domains": {"coding": domain}, "batching": {"max_batch": max_batch}, "onnx_cache": str(REPO / "runs" / "onnx"), **store}
        config.write_text(yaml.safe_dump({"semantic_cache": settings}))
        service = CacheService(config)
        try:
            for prompt in workload["stored"]:
                service.client.post("/v1/cache/store", json={"prompt": prompt, "response": "answer", "domain": "coding"}).raise_for_status()
            timed_checks(service.url, workload["warm_up"])
            rows = {"new_wordings": check_rows(service.url, workload["new_single"], workload["new_many"])}
            rows["exact_repeats"] = check_rows(service.url, workload["stored"][:400], (workload["stored"] * 2)[:2_000])
        finally:
            service.stop()
    return {"encoder": encoder, "max_batch": max_batch, "backend": backend, "stored_entries": len(workload["stored"]), **rows}


def check_rows(url: str, single: list[str], many: list[str]) -> dict:
    """One client's p50/p99 over `single`, and 16 clients' throughput and p99 over `many`."""
    one = timed_checks(url, single)
    concurrent, seconds = concurrent_checks(url, many, 16)
    return {
        "one_client": percentiles(one),
        "sixteen_clients": {**percentiles(concurrent), "checks_per_second": round(len(many) / seconds, 1)},
    }


def timed_checks(url: str, prompts: list[str], domain: str = "coding") -> list[float]:
    """Milliseconds of each /v1/cache/check, one after another from one client."""
    timings = []
    with httpx.Client(base_url=url, timeout=120) as client:
        for prompt in prompts:
            start = time.perf_counter()
            client.post("/v1/cache/check", json={"prompt": prompt, "domain": domain}).raise_for_status()
            timings.append((time.perf_counter() - start) * 1000)
    return timings


def concurrent_checks(url: str, prompts: list[str], clients: int, domain: str = "coding") -> tuple[list[float], float]:
    """`clients` threads sharing `prompts` between them: every check's milliseconds, and the wall seconds of all."""
    timings: list[float] = []
    lock = threading.Lock()

    def worker(share: list[str]) -> None:
        found = timed_checks(url, share, domain)
        with lock:
            timings.extend(found)

    threads = [threading.Thread(target=worker, args=(prompts[i::clients],)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return timings, time.perf_counter() - start


def echo_completion(request: bytes) -> dict:
    """An OpenAI chat completion that answers a chat request with its own messages: a served answer says which chat
    it was stored for."""
    import json

    body = json.loads(request)
    message = {"role": "assistant", "content": json.dumps(body["messages"])}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return {"id": "echo", "object": "chat.completion", "created": 0, "model": body["model"], "choices": [choice]}


def echo_upstream(request: httpx.Request) -> httpx.Response:
    """`echo_completion` as an upstream in this process (for `httpx.MockTransport`)."""
    return httpx.Response(200, json=echo_completion(request.content))


def chat_pairs_through(client: httpx.Client, pairs: list, model: str) -> dict[str, dict[str, int]]:
    """Each chat pair (`cachetune.evaluate.conversations.ChatPair`) sent through a gateway as a user's client would,
    in a tenant of its own: the stored chat first (a miss, stored), then the new one. Per kind: pairs, and new chats
    served from the cache."""
    counts: dict[str, dict[str, int]] = {}
    for number, pair in enumerate(pairs):
        headers = {"x-cachetune-tenant": f"pair-{number}"}
        for chat in (pair.stored, pair.new):
            messages = [{"role": role, "content": text} for role, text in chat]
            response = client.post("/v1/chat/completions", json={"model": model, "messages": messages}, headers=headers)
            response.raise_for_status()
        kind = counts.setdefault(pair.kind, {"pairs": 0, "served": 0})
        kind["pairs"] += 1
        kind["served"] += response.headers["x-cachetune-cache"] == "hit"
    return counts
