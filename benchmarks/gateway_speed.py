"""What the OpenAI-compatible gateway adds: on a hit, against a direct /v1/cache/check; on a miss, against calling
the upstream directly.

    .venv/bin/python benchmarks/gateway_speed.py [--requests 40]

The upstream is llama-cpp-python's server with the packaged 0.5B GGUF on loopback; the gateway is `cachetune serve`
with `upstream` (base-model domain, ONNX encoder). Each miss asks a question nobody asked before, with max_tokens 8,
so the LLM's own time is short and the same for both paths; each hit asks again a question already stored.
Results: results/gateway_speed.{json,md}.
"""

import argparse
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import yaml
from common import machine, save
from servers import CacheService, LlamaServer


def timed_post(http: httpx.Client, url: str, body: dict) -> tuple[float, httpx.Response]:
    """Milliseconds of one POST, and its response (raised for an error status)."""
    start = time.perf_counter()
    response = http.post(url, json=body).raise_for_status()
    return (time.perf_counter() - start) * 1000, response


def summary(timings: list[float]) -> dict:
    p50, p99 = np.percentile(timings, [50, 99])
    return {"p50_ms": round(float(p50), 2), "p99_ms": round(float(p99), 2), "mean_ms": round(float(np.mean(timings)), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    questions = [f"In one word, what is item number {n} of a list of {n + 3} fruits?" for n in range(3 * args.requests)]
    with tempfile.TemporaryDirectory() as folder:
        llama = LlamaServer(Path(folder))
        config = Path(folder) / "gateway.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "semantic_cache": {
                        "domains": {"general": {"similarity_threshold": 0.95}},
                        "upstream": {"base_url": llama.url, "model_domains": {"qwen": "general"}},
                    }
                }
            )
        )
        gateway = CacheService(config)
        try:

            def body(question: str) -> dict:
                return {"model": "qwen", "messages": [{"role": "user", "content": question}], "temperature": 0, "max_tokens": 8}

            with httpx.Client(timeout=120) as http:
                http.post(llama.url + "/chat/completions", json=body("warm up")).raise_for_status()
                http.post(gateway.url + "/v1/chat/completions", json=body("warm up, please")).raise_for_status()
                chat = gateway.url + "/v1/chat/completions"
                direct_miss, gateway_miss = [], []
                for n in range(args.requests):  # alternate, so both paths see the same machine state
                    direct_miss.append(timed_post(http, llama.url + "/chat/completions", body(questions[2 * n]))[0])
                    gateway_miss.append(timed_post(http, chat, body(questions[2 * n + 1]))[0])
                check_hit, gateway_hit, encoded_hit = [], [], []
                for n in range(args.requests):
                    question = questions[2 * n + 1]  # stored by its miss above
                    # Lower-cased: not in the exact tier, so the encoder runs (the uncased model gives the same vector).
                    elapsed, response = timed_post(http, chat, body(question.lower()))
                    assert response.headers["x-cachetune-cache"] == "hit", response.headers
                    encoded_hit.append(elapsed)
                    check_hit.append(timed_post(http, gateway.url + "/v1/cache/check", {"prompt": question, "domain": "general"})[0])
                    elapsed, response = timed_post(http, chat, body(question))
                    assert response.headers["x-cachetune-cache"] == "hit", response.headers
                    gateway_hit.append(elapsed)
                chat_hit = []  # a 6-message chat whose last message needs the turns before it (context: exact)
                for n in range(args.requests):
                    turns = [
                        {"role": "user", "content": questions[2 * args.requests + n]},
                        {"role": "assistant", "content": "Apple."},
                        {"role": "user", "content": "Are you sure?"},
                        {"role": "assistant", "content": "Yes."},
                        {"role": "user", "content": "Thanks."},
                        {"role": "assistant", "content": "You're welcome."},
                        {"role": "user", "content": "In one word: and the one after it?"},
                    ]
                    chat_body = {"model": "qwen", "messages": turns, "temperature": 0, "max_tokens": 8}
                    http.post(chat, json=chat_body).raise_for_status()  # a miss: stored
                    elapsed, response = timed_post(http, chat, chat_body)
                    assert response.headers["x-cachetune-cache"] == "hit", response.headers
                    chat_hit.append(elapsed)
        finally:
            gateway.stop()
            llama.stop()
    results = {
        "requests": args.requests,
        "miss": {"upstream_direct": summary(direct_miss), "through_gateway": summary(gateway_miss)},
        "hit": {
            "cache_check_direct": summary(check_hit),
            "through_gateway": summary(gateway_hit),
            "encoded": summary(encoded_hit),
            "six_turn_chat": summary(chat_hit),
        },
        "machine": machine(),
    }
    miss, hit = results["miss"], results["hit"]
    markdown = f"""# What the gateway adds ({args.requests} requests each, loopback, {results["machine"]["cpus"]} CPUs, {results["machine"]["cpu_model"]})

| path | p50 ms | p99 ms | mean ms |
|---|---:|---:|---:|
| miss: upstream called directly (llama.cpp, 0.5B, max_tokens 8) | {miss["upstream_direct"]["p50_ms"]} | {miss["upstream_direct"]["p99_ms"]} | {miss["upstream_direct"]["mean_ms"]} |
| miss: through the gateway (embed, look up, forward, store) | {miss["through_gateway"]["p50_ms"]} | {miss["through_gateway"]["p99_ms"]} | {miss["through_gateway"]["mean_ms"]} |
| hit: a new wording through the gateway (encoder runs) | {hit["encoded"]["p50_ms"]} | {hit["encoded"]["p99_ms"]} | {hit["encoded"]["mean_ms"]} |
| hit: POST /v1/cache/check (exact tier) | {hit["cache_check_direct"]["p50_ms"]} | {hit["cache_check_direct"]["p99_ms"]} | {hit["cache_check_direct"]["mean_ms"]} |
| hit: POST /v1/chat/completions through the gateway (exact tier) | {hit["through_gateway"]["p50_ms"]} | {hit["through_gateway"]["p99_ms"]} | {hit["through_gateway"]["mean_ms"]} |
| hit: a 7-message chat (6 earlier turns, context exact) | {hit["six_turn_chat"]["p50_ms"]} | {hit["six_turn_chat"]["p99_ms"]} | {hit["six_turn_chat"]["mean_ms"]} |

On a miss the gateway adds {miss["through_gateway"]["mean_ms"] - miss["upstream_direct"]["mean_ms"]:.1f} ms on average; on a hit it
answers in {hit["through_gateway"]["mean_ms"] - hit["cache_check_direct"]["mean_ms"]:+.1f} ms against a bare cache check.
A prompt seen lately (the exact tier, `exact_tier_entries`) skips the encoder; a new wording pays for it.
"""
    save("gateway_speed", results, markdown)


if __name__ == "__main__":
    main()
