"""Encode latency (one query at a time, as a cache sees them) and batch throughput."""

import time

import numpy as np

LATENCY_QUERIES = 200
THROUGHPUT_TEXTS = 512


def encode_speed(model, texts: list[str]) -> dict:
    for text in texts[:5]:  # warm-up: first calls allocate
        model.encode([text])
    timings = []
    for text in (texts * (LATENCY_QUERIES // max(len(texts), 1) + 1))[:LATENCY_QUERIES]:
        start = time.perf_counter()
        model.encode([text])
        timings.append((time.perf_counter() - start) * 1000)
    batch = (texts * (THROUGHPUT_TEXTS // max(len(texts), 1) + 1))[:THROUGHPUT_TEXTS]
    start = time.perf_counter()
    model.encode(batch, batch_size=64)
    seconds = time.perf_counter() - start
    return {
        "latency_ms_p50": float(np.percentile(timings, 50)),
        "latency_ms_p99": float(np.percentile(timings, 99)),
        "throughput_texts_per_second": len(batch) / seconds,
    }
