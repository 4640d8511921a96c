"""RedisVL (and LangChain's Redis semantic cache, built on it) with a cachetune domain's model and threshold.

    from redisvl.extensions.cache.llm import SemanticCache
    embedder = DomainEmbedder.from_config("cache.yaml", "coding")
    cache = SemanticCache(name="coding", redis_url="redis://localhost:6379", vectorizer=CachetuneVectorizer(embedder),
                          distance_threshold=distance_threshold(embedder.similarity_threshold))

RedisVL stores vectors in a Redis COSINE index, whose distance is 1 - cosine (0 to 2), and `check` serves an entry
whose distance is at most `distance_threshold`: the same entries as cachetune's cosine >= threshold.
"""

import asyncio
from typing import Any

from pydantic import PrivateAttr
from redisvl.utils.vectorize import BaseVectorizer

from cachetune.integrations.embedder import DomainEmbedder


def distance_threshold(similarity_threshold: float) -> float:
    """cachetune's cosine similarity threshold as RedisVL's `distance_threshold` (Redis COSINE distance, 0-2)."""
    return 1.0 - similarity_threshold


class CachetuneVectorizer(BaseVectorizer):
    """A RedisVL vectorizer that embeds with a cachetune domain's model (sync and async, one text or many).

    Args:
        embedder: the domain's `DomainEmbedder`.
    """

    _embedder: DomainEmbedder = PrivateAttr()

    def __init__(self, embedder: DomainEmbedder, **options: Any) -> None:
        super().__init__(model=f"cachetune:{embedder.domain}", dims=embedder.dim, **options)
        self._embedder = embedder

    @property
    def type(self) -> str:
        return "cachetune"

    def _embed(self, content: Any, **kwargs) -> list[float]:
        return self._embedder.embed(str(content))

    def _embed_many(self, contents: list[Any], batch_size: int = 10, **kwargs) -> list[list[float]]:
        return self._embedder.embed_many([str(content) for content in contents])

    async def _aembed(self, content: Any, **kwargs) -> list[float]:
        return await asyncio.to_thread(self._embed, content)

    async def _aembed_many(self, contents: list[Any], batch_size: int = 10, **kwargs) -> list[list[float]]:
        return await asyncio.to_thread(self._embed_many, contents)
