"""Encode latency (one query at a time, as a cache sees them), batch throughput, and size on disk."""

import time
from pathlib import Path

import numpy as np

from cachetune.models import adapter_base_name, is_adapter, locate, onnx_file_of, resolve_base_model

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


def size_on_disk(spec: str | None) -> dict:
    """Bytes of the weights a deployment needs: the model's, and the adapter's where there is one."""
    spec = locate(spec)
    path = Path(spec) if spec else None
    onnx_file = onnx_file_of(path)
    if onnx_file is not None:
        return {"model_bytes": onnx_file.stat().st_size, "adapter_bytes": None}
    if path is not None and is_adapter(path):
        base = resolve_base_model(adapter_base_name(path)).location
        adapter = sum(f.stat().st_size for f in path.glob("adapter_model.*"))
        return {"model_bytes": _weights_bytes(Path(base)), "adapter_bytes": adapter}
    return {"model_bytes": _weights_bytes(Path(resolve_base_model(spec).location)), "adapter_bytes": None}


def _weights_bytes(folder: Path) -> int | None:
    files = [p for p in folder.rglob("*") if p.suffix in (".safetensors", ".bin")]
    return sum(f.stat().st_size for f in files) if files else None
