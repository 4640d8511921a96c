"""GPTCache with a cachetune domain's model, deciding hits as cachetune's `check()` does.

    embedder = DomainEmbedder.from_config("cache.yaml", "coding")
    cache = similar_cache(embedder, "gptcache-data")
    gptcache.adapter.api.put("How do I reverse a list?", "list.reverse()", cache_obj=cache)
    gptcache.adapter.api.get("reverse a python list", cache_obj=cache)  # the answer, or None

GPTCache scores a candidate by its own similarity evaluation, not by the cosine. Wired here: its SQLite + FAISS
store (exact L2 search; for L2-normalised vectors the squared distance is 2 - 2 cos), `SearchDistanceEvaluation`
(score = max_distance - distance) and a `similarity_threshold` that it scales by max_distance. `similarity_threshold`
below converts cachetune's cosine threshold so that GPTCache serves exactly the entries with cosine >= it.
"""

from pathlib import Path

import numpy as np
from gptcache import Cache, Config
from gptcache.embedding.base import BaseEmbedding
from gptcache.manager import manager_factory
from gptcache.processor.post import first
from gptcache.processor.pre import get_prompt
from gptcache.similarity_evaluation import SearchDistanceEvaluation

from cachetune.integrations.embedder import DomainEmbedder

MAX_DISTANCE = 4.0  # SearchDistanceEvaluation's default bound; squared L2 of unit vectors is at most 4


def similarity_threshold(cosine_threshold: float, max_distance: float = MAX_DISTANCE) -> float:
    """cachetune's cosine threshold as GPTCache's `Config(similarity_threshold=...)` with FAISS L2 and
    `SearchDistanceEvaluation(max_distance)`: a hit when max_distance - (2 - 2 cos) >= max_distance * it."""
    return 1.0 - (2.0 - 2.0 * cosine_threshold) / max_distance


class CachetuneEmbedding(BaseEmbedding):
    """GPTCache's embedding function (`to_embeddings`, `dimension`) for a cachetune domain."""

    def __init__(self, embedder: DomainEmbedder) -> None:
        self._embedder = embedder

    def to_embeddings(self, data, **_) -> np.ndarray:
        return self._embedder.embed_array([str(data)])[0]

    @property
    def dimension(self) -> int:
        return self._embedder.dim


def similar_cache(embedder: DomainEmbedder, data_dir: str | Path, candidates: int = 5) -> Cache:
    """A GPTCache (SQLite + FAISS in `data_dir`) that serves what cachetune would at the embedder's threshold.

    Args:
        embedder: the domain's `DomainEmbedder`; its `similarity_threshold` is converted.
        data_dir: where GPTCache keeps its SQLite file and FAISS index.
        candidates: entries GPTCache scores per lookup; the most similar one that passes is served.
    """
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    embedding = CachetuneEmbedding(embedder)
    cache = Cache()
    cache.init(
        pre_embedding_func=get_prompt,
        embedding_func=embedding.to_embeddings,
        data_manager=manager_factory(
            "sqlite,faiss", data_dir=str(data_dir), vector_params={"dimension": embedding.dimension, "top_k": candidates}
        ),
        similarity_evaluation=SearchDistanceEvaluation(max_distance=MAX_DISTANCE),
        post_process_messages_func=first,
        config=Config(similarity_threshold=similarity_threshold(embedder.similarity_threshold)),
    )
    return cache
