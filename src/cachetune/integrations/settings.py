"""Settings of `cachetune litellm-config`: the one place each of them is declared (see cachetune.settings)."""

from pathlib import Path

from pydantic import Field

from cachetune.settings import StageSettings


class LitellmConfigSettings(StageSettings):
    """Write a LiteLLM proxy config whose redis-semantic cache embeds with a cachetune domain (through `cachetune
    serve`'s /v1/embeddings) and serves at the domain's threshold, converted to LiteLLM's scale."""

    cache_config: Path = Field(description="The cachetune cache config that `cachetune serve` runs (YAML).")
    domain: str = Field(description="The domain whose model embeds the prompts.")
    threshold_from: Path | None = Field(
        None, description="report.json of `cachetune evaluate` (its operating threshold); default: the domain's similarity_threshold."
    )
    llm_model: str = Field(description="The LLM as LiteLLM names it, e.g. openai/gpt-4o-mini.")
    llm_api_base: str | None = Field(None, description="The LLM's OpenAI-compatible base URL; default: the provider's own.")
    llm_api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable the proxy reads the LLM's key from.")
    model_name: str | None = Field(None, description="The model name clients ask the proxy for; default: llm_model without its provider.")
    service_url: str = Field("http://127.0.0.1:8080/v1", description="`cachetune serve`'s OpenAI-compatible base URL.")
    service_api_key_env: str | None = Field(None, description="Environment variable with a cachetune API key (when it has auth).")
    redis_url: str = Field("redis://127.0.0.1:6379", description="The Redis Stack / Redis 8 that LiteLLM caches in.")
    output: Path = Field(Path("litellm.yaml"), description="Where the proxy config is written.")
