"""The gateway's context modes on both conversation sets: which chat pairs each serves, by kind.

    .venv/bin/python benchmarks/conversations.py

Sets (src/cachetune/evaluate/): `development` (conversations.yaml, 28 scenarios, 168 pairs, written while building
the context rules) and `apart` (conversations_apart.yaml, 66 scenarios, 396 pairs, written by someone who never
read cachetune.conversation, committed before any rule changed, reported here as it falls and never tuned on).

1. Through the gateway (the figures the issue asks for): `create_app` in this process with each context mode, the
   base model at the cache's default threshold 0.9, and an upstream that answers every request with its own text
   (httpx.MockTransport: what the upstream says does not matter here, only which stored answer is served). Each
   pair gets a tenant of its own; the stored chat is sent first (a miss, stored), then the new one: served or not.
2. Offline, per model (the base on every domain; each shipped adapter on its own domain's development scenarios):
   the threshold chosen per mode on the development set's even scenarios, the odd ones decided at it
   (`cachetune.evaluate.conversations.served`), as before.

Results: results/conversations.{json,md}.
"""

import httpx
import numpy as np
from common import machine, save
from fastapi.testclient import TestClient
from traffic import chat_pairs_through, echo_upstream

from cachetune.cache.semantic_cache import SemanticCache
from cachetune.cache.service import create_app
from cachetune.cache_config import CacheConfig
from cachetune.conversation import CONTEXT_MODES
from cachetune.evaluate.conversations import (
    CONVERSATION_SETS,
    MUST_NOT_HIT,
    SHOULD_HIT,
    ChatPair,
    conversation_metrics,
    conversation_pairs,
    served,
    texts_of,
)
from cachetune.models import DEFAULT_BASE_MODEL, load_encoder
from cachetune.train.validation import vectors_of

THRESHOLDS = np.round(np.arange(0.70, 0.985, 0.01), 2)
MODELS = {"base": (DEFAULT_BASE_MODEL, None), "programming": ("programming", {"programming"}), "medical": ("medical", {"medical"})}
GATEWAY_THRESHOLD = 0.9  # the cache's default similarity_threshold


def through_the_gateway(pairs: list[ChatPair], mode: str) -> dict:
    """Each pair sent through the gateway as a user's client would: per kind, how many new chats were served."""
    upstream = {"base_url": "http://upstream.invalid/v1", "model_domains": {"chat": "general"}, "context": mode, "max_messages": 32}
    config = CacheConfig.model_validate({"domains": {"general": {"similarity_threshold": GATEWAY_THRESHOLD}}, "upstream": upstream})
    with SemanticCache(config) as cache, TestClient(create_app(cache, upstream_transport=httpx.MockTransport(echo_upstream))) as client:
        counts = chat_pairs_through(client, pairs, "chat")
    should = [counts[k] for k in SHOULD_HIT]
    return {
        "kinds": counts,
        "should_hit_served": sum(c["served"] for c in should) / sum(c["pairs"] for c in should),
        "wrong_hits": sum(counts[k]["served"] for k in MUST_NOT_HIT),
    }


def chosen_threshold(pairs, vector_of, mode: str) -> float:
    """On validation pairs: the threshold with the fewest wrong hits, then the most should-hit pairs served."""
    kinds = np.array([p.kind for p in pairs])

    def score(threshold: float) -> tuple[int, int]:
        hits = served(pairs, vector_of, threshold, mode)
        return -int(hits[np.isin(kinds, MUST_NOT_HIT)].sum()), int(hits[np.isin(kinds, SHOULD_HIT)].sum())

    return float(max(THRESHOLDS, key=lambda t: (score(t), -t)))


def offline(name: str) -> dict:
    spec, domains = MODELS[name]
    pairs = conversation_pairs(domains)
    vector_of = vectors_of(load_encoder(spec), texts_of(pairs))
    val, test = [p for p in pairs if p.scenario % 2 == 0], [p for p in pairs if p.scenario % 2 == 1]
    rows = {}
    for mode in CONTEXT_MODES:
        threshold = chosen_threshold(val, vector_of, mode)
        rows[mode] = {
            "threshold": threshold,
            "val": conversation_metrics(val, vector_of, threshold)["modes"][mode],
            "test": conversation_metrics(test, vector_of, threshold)["modes"][mode],
        }
    return {"pairs": len(pairs), "domains": sorted({p.domain for p in pairs}), "modes": rows}


def main() -> None:
    gateway = {
        which: {mode: through_the_gateway(conversation_pairs(which=which), mode) for mode in CONTEXT_MODES} for which in CONVERSATION_SETS
    }
    sizes = {which: len(conversation_pairs(which=which)) for which in CONVERSATION_SETS}
    results = {"machine": machine(), "gateway": gateway, "set_pairs": sizes, "models": {name: offline(name) for name in MODELS}}
    save("conversations", results, markdown(results))


def cells(row: dict) -> list[str]:
    return [f"{row['kinds'][k]['served']}/{row['kinds'][k]['pairs']}" for k in SHOULD_HIT + MUST_NOT_HIT]


def markdown(results: dict) -> str:
    kinds = SHOULD_HIT + MUST_NOT_HIT
    header = "| set | context | " + " | ".join(kinds) + " | should-hit served | wrong hits |"
    lines = [
        "# The gateway's context modes on both conversation sets",
        "",
        "Command: `.venv/bin/python benchmarks/conversations.py`. Each cell: pairs served / pairs. The first three kinds",
        "should be served; the last three must not be (another conversation's answer). `apart`: the set written without",
        "reading the rules (commit ab30396), reported once, never tuned on; `development`: the set the rules were built on.",
        "",
        f"## Through the gateway (base model, threshold {GATEWAY_THRESHOLD}, each pair in its own tenant)",
        "",
        header,
        "|---|---|" + "---:|" * (len(kinds) + 2),
    ]
    for which, modes in results["gateway"].items():
        for mode, row in modes.items():
            label = f"{mode} (default)" if mode == "conversation" else mode
            lines.append(
                f"| {which} ({results['set_pairs'][which]}) | {label} | "
                + " | ".join(cells(row))
                + f" | {row['should_hit_served']:.3f} | {row['wrong_hits']} |"
            )
    lines += ["", "## Offline, development set: threshold chosen per mode on its even scenarios, the odd ones decided at it", ""]
    for name, model in results["models"].items():
        lines += [f"### {name} ({model['pairs']} pairs: {', '.join(model['domains'])})", ""]
        lines += ["| context | threshold | split | " + " | ".join(kinds) + " | should-hit served | wrong hits |"]
        lines += ["|---|---:|---|" + "---:|" * (len(kinds) + 2)]
        for mode, row in model["modes"].items():
            for split in ("val", "test"):
                r = row[split]
                lines.append(
                    f"| {mode} | {row['threshold']:.2f} | {split} | "
                    + " | ".join(cells(r))
                    + f" | {r['should_hit_served']:.3f} | {r['wrong_hits']} |"
                )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
