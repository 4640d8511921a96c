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
from common import machine, save, table
from servers import CacheService, LlamaServer


def timed_post(http: httpx.Client, url: str, body: dict) -> tuple[float, httpx.Response]:
    """Milliseconds of one POST, and its response (raised for an error status)."""
    start = time.perf_counter()
    response = http.post(url, json=body).raise_for_status()
    return (time.perf_counter() - start) * 1000, response


def summary(timings: list[float]) -> dict:
    p50, p99 = np.percentile(timings, [50, 99])
    return {"p50_ms": round(float(p50), 2), "p99_ms": round(float(p99), 2), "mean_ms": round(float(np.mean(timings)), 2)}


def body(question: str | list[dict]) -> dict:
    """A chat completion request: one user message, or the given turns."""
    messages = [{"role": "user", "content": question}] if isinstance(question, str) else question
    return {"model": "qwen", "messages": messages, "temperature": 0, "max_tokens": 8}


def assert_hit(response: httpx.Response) -> None:
    assert response.headers["x-cachetune-cache"] == "hit", response.headers


def misses(http: httpx.Client, llama_url: str, chat: str, questions: list[str], requests: int) -> tuple[list, list]:
    """New questions, alternately to the upstream directly and through the gateway (both see the same machine)."""
    direct, through = [], []
    for n in range(requests):
        direct.append(timed_post(http, llama_url + "/chat/completions", body(questions[2 * n]))[0])
        through.append(timed_post(http, chat, body(questions[2 * n + 1]))[0])
    return direct, through


def hits(http: httpx.Client, gateway_url: str, questions: list[str], requests: int) -> dict[str, list[float]]:
    """Each question the gateway stored on its miss, asked again three ways."""
    chat, timings = gateway_url + "/v1/chat/completions", {"encoded": [], "cache_check_direct": [], "through_gateway": []}
    for n in range(requests):
        question = questions[2 * n + 1]
        # Lower-cased: not in the exact tier, so the encoder runs (the uncased model gives the same vector).
        elapsed, response = timed_post(http, chat, body(question.lower()))
        assert_hit(response)
        timings["encoded"].append(elapsed)
        check = {"prompt": question, "domain": "general"}
        timings["cache_check_direct"].append(timed_post(http, gateway_url + "/v1/cache/check", check)[0])
        elapsed, response = timed_post(http, chat, body(question))
        assert_hit(response)
        timings["through_gateway"].append(elapsed)
    return timings


def chat_hits(http: httpx.Client, chat: str, questions: list[str]) -> list[float]:
    """A 7-message chat whose last message needs the turns before it: stored on its miss, then asked again."""
    timings = []
    for question in questions:
        replies = ["Apple.", "Are you sure?", "Yes.", "Thanks.", "You're welcome.", "In one word: and the one after it?"]
        turns = [{"role": "user", "content": question}]
        turns += [{"role": "assistant" if i % 2 == 0 else "user", "content": text} for i, text in enumerate(replies)]
        http.post(chat, json=body(turns)).raise_for_status()  # a miss: stored
        elapsed, response = timed_post(http, chat, body(turns))
        assert_hit(response)
        timings.append(elapsed)
    return timings


def measure(requests: int) -> dict:
    questions = [f"In one word, what is item number {n} of a list of {n + 3} fruits?" for n in range(3 * requests)]
    with tempfile.TemporaryDirectory() as folder:
        llama = LlamaServer(Path(folder))
        config = Path(folder) / "gateway.yaml"
        upstream = {"base_url": llama.url, "model_domains": {"qwen": "general"}}
        config.write_text(
            yaml.safe_dump({"semantic_cache": {"domains": {"general": {"similarity_threshold": 0.95}}, "upstream": upstream}})
        )
        gateway = CacheService(config)
        try:
            with httpx.Client(timeout=120) as http:
                http.post(llama.url + "/chat/completions", json=body("warm up")).raise_for_status()
                chat = gateway.url + "/v1/chat/completions"
                http.post(chat, json=body("warm up, please")).raise_for_status()
                direct, through = misses(http, llama.url, chat, questions, requests)
                hit = hits(http, gateway.url, questions, requests)
                hit["six_turn_chat"] = chat_hits(http, chat, questions[2 * requests :])
        finally:
            gateway.stop()
            llama.stop()
    return {
        "requests": requests,
        "miss": {"upstream_direct": summary(direct), "through_gateway": summary(through)},
        "hit": {name: summary(timings) for name, timings in hit.items()},
        "machine": machine(),
    }


ROWS = [
    ("miss", "upstream_direct", "miss: upstream called directly (llama.cpp, 0.5B, max_tokens 8)"),
    ("miss", "through_gateway", "miss: through the gateway (embed, look up, forward, store)"),
    ("hit", "encoded", "hit: a new wording through the gateway (encoder runs)"),
    ("hit", "cache_check_direct", "hit: POST /v1/cache/check (exact tier)"),
    ("hit", "through_gateway", "hit: POST /v1/chat/completions through the gateway (exact tier)"),
    ("hit", "six_turn_chat", "hit: a 7-message chat (6 earlier turns, context keyed by the conversation)"),
]


def markdown(results: dict) -> str:
    machine_, miss, hit = results["machine"], results["miss"], results["hit"]
    rows = [[label, *(results[kind][name][k] for k in ("p50_ms", "p99_ms", "mean_ms"))] for kind, name, label in ROWS]
    return "\n".join(
        [
            f"# What the gateway adds ({results['requests']} requests each, loopback, {machine_['cpus']} CPUs, {machine_['cpu_model']})",
            "",
            *table(["path", "p50 ms", "p99 ms", "mean ms"], rows),
            "",
            f"On a miss the gateway adds {miss['through_gateway']['mean_ms'] - miss['upstream_direct']['mean_ms']:.1f} ms on average; on a hit it",
            f"answers in {hit['through_gateway']['mean_ms'] - hit['cache_check_direct']['mean_ms']:+.1f} ms against a bare cache check.",
            "A prompt seen lately (the exact tier, `exact_tier_entries`) skips the encoder; a new wording pays for it.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=40)
    results = measure(parser.parse_args().requests)
    save("gateway_speed", results, markdown(results))


if __name__ == "__main__":
    main()
