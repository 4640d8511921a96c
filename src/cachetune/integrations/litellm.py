"""LiteLLM's proxy with a cachetune domain as its semantic cache's embedding model.

`cachetune litellm-config` writes the proxy's config: the LLM, the cachetune service's /v1/embeddings as a second
model, and `cache_params: {type: redis-semantic, ...}` naming it, at the domain's threshold. LiteLLM's redis-semantic
cache is RedisVL's `SemanticCache` with `distance_threshold = 1 - similarity_threshold`, so cachetune's cosine
threshold is LiteLLM's `similarity_threshold` unchanged. LiteLLM embeds the text of every message of a request
joined (not the last user message alone, as cachetune's gateway does), with no check of a chat's earlier turns.
"""

from pathlib import Path

import yaml

from cachetune.integrations.embedder import threshold_of
from cachetune.integrations.settings import LitellmConfigSettings


def similarity_threshold(cosine_threshold: float) -> float:
    """cachetune's cosine threshold as LiteLLM's `similarity_threshold` (LiteLLM turns it into 1 - it for RedisVL)."""
    return cosine_threshold


def _env(name: str | None) -> str:
    return f"os.environ/{name}" if name else "unused"  # LiteLLM's syntax for a secret read from the environment


def proxy_config(settings: LitellmConfigSettings) -> dict:
    """The LiteLLM proxy config for `settings.domain` (see the module's docstring).

    Raises:
        InputError: the cache config or the report is missing or wrong, or the domain is not in the cache config.
    """
    threshold = threshold_of(settings.cache_config, settings.domain)  # also checks that the domain exists
    if settings.threshold_from is not None:
        threshold = threshold_of(settings.threshold_from, settings.domain)
    llm = {"model": settings.llm_model, "api_key": _env(settings.llm_api_key_env)}
    if settings.llm_api_base:
        llm["api_base"] = settings.llm_api_base
    embedding_model = f"cachetune-{settings.domain}"
    return {
        "model_list": [
            {"model_name": settings.model_name or settings.llm_model.split("/", 1)[-1], "litellm_params": llm},
            {
                "model_name": embedding_model,
                "litellm_params": {
                    "model": f"openai/{settings.domain}",  # cachetune's /v1/embeddings takes the domain as the model
                    "api_base": settings.service_url,
                    "api_key": _env(settings.service_api_key_env),
                },
            },
        ],
        "litellm_settings": {
            "cache": True,
            "cache_params": {
                "type": "redis-semantic",
                "redis_url": settings.redis_url,
                "similarity_threshold": similarity_threshold(threshold),
                "redis_semantic_cache_embedding_model": embedding_model,
                "redis_semantic_cache_index_name": f"cachetune_{settings.domain}",
            },
        },
    }


def write_proxy_config(settings: LitellmConfigSettings) -> Path:
    """`proxy_config` written to `settings.output` (YAML); returns that path."""
    config = proxy_config(settings)
    settings.output.parent.mkdir(parents=True, exist_ok=True)
    settings.output.write_text(yaml.safe_dump(config, sort_keys=False))
    return settings.output
