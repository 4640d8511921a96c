"""A cachetune domain's model and threshold inside the semantic caches teams already run.

- `embedder.DomainEmbedder`: a domain's encoder exactly as `cachetune serve` runs it, and its similarity threshold
  (from a cache config or an evaluation report).
- `redisvl`: a RedisVL vectorizer and the threshold as RedisVL's cosine distance (also what LangChain's Redis cache uses).
- `gptcache`: a GPTCache embedding function and a GPTCache wired to decide as cachetune does.
- `litellm`: the LiteLLM proxy config for a domain: the cachetune service as its embedding model, redis-semantic cache.

Each library is an optional dependency (the `redisvl`, `gptcache` and `litellm` extras); nothing here imports one
until its module is imported.
"""
