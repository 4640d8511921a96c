"""A cachetune domain inside the caches teams already run, each run for real: RedisVL's `SemanticCache` on the suite's
Redis 8, GPTCache in process (SQLite + FAISS), LiteLLM's proxy on loopback (its redis-semantic cache, `cachetune
serve`'s /v1/embeddings as its embedding model, llama.cpp's server as its LLM) driven by the `openai` client.

Each stores the same 50 prompts and answers the same 200 checks (the hand-written rewordings and look-alikes of
evaluate/traps.yaml) as cachetune's own `check()`, at the threshold converted to its scale: the same hit or miss, and
the same stored prompt on a hit."""

import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import numpy as np
import openai
import pytest
import yaml
from servers import CacheService, free_port, wait_for_port

from cachetune.cache.semantic_cache import SemanticCache
from cachetune.errors import InputError
from cachetune.evaluate.result import EvaluationReport
from cachetune.evaluate.traps import hand_traps
from cachetune.integrations.embedder import DomainEmbedder, threshold_of

pytestmark = [pytest.mark.servers, pytest.mark.llm]  # Redis, `cachetune serve`, LiteLLM's proxy, llama.cpp

THRESHOLD = 0.8  # the base model's cosine: between the hand rewordings and most of their look-alikes
DOMAIN = "coding"


@pytest.fixture(scope="module")
def prompts() -> tuple[list[str], list[str]]:
    """50 stored prompts, and 200 checks: first the rewordings and look-alikes of those, then of the others."""
    pairs = hand_traps()
    stored = list(dict.fromkeys(pair.stored for pair in pairs))[:50]
    checks = list(dict.fromkeys([p.new for p in pairs if p.stored in stored] + [p.new for p in pairs]))[:200]
    assert len(stored) == 50 and len(checks) == 200
    return stored, checks


@pytest.fixture(scope="module")
def cache_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("integrations") / "cache.yaml"
    domain = {"similarity_threshold": THRESHOLD, "encoder": "torch"}
    path.write_text(yaml.safe_dump({"semantic_cache": {"domains": {DOMAIN: domain}}}))
    return path


@pytest.fixture(scope="module")
def expected(cache_config, prompts) -> list[str | None]:
    """What cachetune's own check() serves: the stored prompt of each check's hit, or None."""
    stored, checks = prompts
    cache = SemanticCache.from_config(cache_config)
    for number, prompt in enumerate(stored):
        cache.store(prompt, f"answer {number}", domain=DOMAIN)
    decisions = [hit.prompt if (hit := cache.check(check, domain=DOMAIN)) else None for check in checks]
    cache.close()
    hits = sum(decision is not None for decision in decisions)
    assert 10 < hits < 190, hits  # both outcomes occur, so agreement means something
    return decisions


@pytest.fixture(scope="module")
def embedder(cache_config):
    embedder = DomainEmbedder.from_config(cache_config, DOMAIN)
    yield embedder
    embedder.close()


def near_threshold(embedder, stored, checks) -> int:
    """Checks whose best cosine is within float rounding of the threshold (where two libraries may round apart)."""
    best = (embedder.embed_array(checks) @ embedder.embed_array(stored).T).max(axis=1)
    return int(np.sum(np.abs(best - THRESHOLD) < 1e-5))


def test_the_threshold_comes_from_a_cache_config_or_a_clear_error(cache_config, tmp_path):
    assert threshold_of(cache_config, DOMAIN) == THRESHOLD
    with pytest.raises(InputError, match=r"cache.yaml: semantic_cache.domains: no domain 'legal'"):
        threshold_of(cache_config, "legal")
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"operating_thresholds": {}}))
    with pytest.raises(InputError, match=r"report.json: not an evaluation report: output: Field required"):
        threshold_of(report, DOMAIN)
    without_val_data = {"models": {}, "test_data": [], "val_data": None, "pairs": [], "triplets": [], "traps": {}, "conversations": {}}
    EvaluationReport(output="r", target_precision=0.95, operating_thresholds={}, **without_val_data).write_json(report)
    with pytest.raises(InputError, match=r"report.json: operating_thresholds.tuned: none chosen"):
        threshold_of(report, DOMAIN)


def test_the_embedder_gives_the_cache_s_own_vectors(cache_config, embedder):
    cache = SemanticCache.from_config(cache_config)
    texts = ["How do I reverse a list in Python?", "reverse a python list", "Sort a list in descending order"]
    ours = np.stack([cache.embed(text, DOMAIN) for text in texts])
    cache.close()
    assert embedder.dim == 384 and np.allclose(embedder.embed_array(texts), ours, atol=1e-5)
    assert np.allclose(embedder.embed(texts[0]), ours[0], atol=1e-5)


def test_redisvl_semantic_cache_decides_as_cachetune(redis_server, embedder, prompts, expected):
    from redisvl.extensions.cache.llm import SemanticCache as RedisVLCache

    from cachetune.integrations.redisvl import CachetuneVectorizer, distance_threshold

    stored, checks = prompts
    vectorizer = CachetuneVectorizer(embedder)
    cache = RedisVLCache(
        name="cachetune_redisvl", redis_url=redis_server.url, vectorizer=vectorizer,
        distance_threshold=distance_threshold(embedder.similarity_threshold), overwrite=True,
    )  # fmt: skip
    for number, prompt in enumerate(stored):
        cache.store(prompt, f"answer {number}")
    decisions = [hits[0]["prompt"] if (hits := cache.check(check)) else None for check in checks]
    assert near_threshold(embedder, stored, checks) == 0
    assert decisions == expected
    first_hit = next(n for n, decision in enumerate(expected) if decision)
    assert asyncio.run(cache.acheck(checks[first_hit]))[0]["prompt"] == expected[first_hit]  # the async path too
    assert np.allclose(asyncio.run(vectorizer.aembed_many(stored[:3])), embedder.embed_many(stored[:3]))
    cache.delete()


def test_gptcache_decides_as_cachetune(tmp_path, embedder, prompts, expected):
    from gptcache.adapter import api

    from cachetune.integrations.gptcache import similar_cache

    stored, checks = prompts
    cache = similar_cache(embedder, tmp_path / "gptcache")
    for number, prompt in enumerate(stored):
        api.put(prompt, f"answer {number}", cache_obj=cache)
    prompt_of = {f"answer {number}": prompt for number, prompt in enumerate(stored)}
    decisions = [prompt_of.get(api.get(check, cache_obj=cache)) for check in checks]
    assert decisions == expected


@pytest.fixture(scope="module")
def litellm_proxy(tmp_path_factory, redis_server, cache_config, llama_server):
    """llama.cpp's server, `cachetune serve` (the domain of cache_config, as the LLM's gateway and embedding model),
    and LiteLLM's proxy run from the config `cachetune litellm-config` writes; yields (openai client, config)."""
    folder, llama = tmp_path_factory.mktemp("litellm"), llama_server
    service_config = folder / "service.yaml"
    document = yaml.safe_load(cache_config.read_text())
    document["semantic_cache"]["upstream"] = {"base_url": llama.url}
    service_config.write_text(yaml.safe_dump(document))
    service = CacheService(service_config)
    proxy_config = folder / "litellm.yaml"
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "cachetune"), "litellm-config", "--cache-config", str(service_config), "--domain", DOMAIN,
         "--llm-model", "openai/qwen", "--llm-api-base", llama.url, "--service-url", service.url + "/v1",
         "--redis-url", redis_server.url, "--output", str(proxy_config)],
        check=True, capture_output=True,
    )  # fmt: skip
    master_key, port, log = "sk-" + secrets.token_hex(16), free_port(), folder / "proxy.log"
    env = {**os.environ, "LITELLM_MASTER_KEY": master_key, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "unused"}
    command = [str(bin_dir / "litellm"), "--config", str(proxy_config), "--host", "127.0.0.1", "--port", str(port)]
    proxy = subprocess.Popen(command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    wait_for_port(port, proxy, 180, log)
    yield openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=master_key, max_retries=0), yaml.safe_load(proxy_config.read_text())
    proxy.terminate()
    proxy.wait(timeout=30)
    service.stop()


def test_litellm_config_carries_the_domain_and_its_threshold(litellm_proxy):
    _, config = litellm_proxy
    cache = config["litellm_settings"]["cache_params"]
    assert cache["type"] == "redis-semantic" and cache["similarity_threshold"] == THRESHOLD
    embedding = next(m for m in config["model_list"] if m["model_name"] == cache["redis_semantic_cache_embedding_model"])
    assert embedding["litellm_params"]["model"] == f"openai/{DOMAIN}"


def test_litellm_proxy_decides_as_cachetune(litellm_proxy, prompts, expected):
    client, _ = litellm_proxy

    def ask(prompt: str, cache: dict) -> str:
        """The completion's id: a cache hit answers with the stored completion, and so with its id."""
        messages = [{"role": "user", "content": prompt}]
        return client.chat.completions.create(model="qwen", messages=messages, temperature=0, max_tokens=1, extra_body={"cache": cache}).id

    stored, checks = prompts
    prompt_of = {ask(prompt, {"no-cache": True}): prompt for prompt in stored}  # stored as cachetune's store(): never looked up
    assert len(prompt_of) == len(stored)
    decisions = [prompt_of.get(ask(check, {"no-store": True})) for check in checks]  # looked up, the cache left as it was
    assert decisions == expected
