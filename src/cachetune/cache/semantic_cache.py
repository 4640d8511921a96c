"""`SemanticCache`: answer a prompt with a stored response when a stored prompt means the same.

    cache = SemanticCache.from_config("cache.yaml")
    hit = cache.check("How do I reverse a list in Python?", domain="coding", tenant="acme")
    if hit is None:
        response = call_the_llm(...)
        cache.store("How do I reverse a list in Python?", response, domain="coding", tenant="acme")

Each domain has its own model (base + adapter), threshold, TTL, size limit and eviction; domain and
tenant are hard filters in the store. A miss embeds the prompt once: its vector is kept for the
`store` call that usually follows.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cachetune.cache.config import CacheConfig, DomainConfig, load_config
from cachetune.cache.encoders import DomainEncoders
from cachetune.cache.stores import MemoryStore, NamespaceSettings, Store

DEFAULT_TENANT = ""
PENDING_MISSES = 10_000  # vectors of recent misses kept for their `store`


class CacheError(ValueError):
    """A request the cache cannot serve as asked: an unknown domain, an empty prompt."""


@dataclass(frozen=True)
class Hit:
    response: str
    prompt: str  # the stored prompt that matched
    similarity: float
    age_seconds: float
    metadata: dict | None = None


class SemanticCache:
    def __init__(self, config: CacheConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._encoders = DomainEncoders(config.base_model, {name: d.embedding_model_path for name, d in config.domains.items()}, config.adapter_mode)
        namespaces = {d.namespace or name: NamespaceSettings(d.max_entries, d.eviction) for name, d in config.domains.items()}
        self._store = make_store(config, self._encoders.dim, namespaces)
        self._pending: OrderedDict[tuple[str, str], object] = OrderedDict()
        self._pending_lock = threading.Lock()

    @classmethod
    def from_config(cls, path: str | Path, clock: Callable[[], float] = time.time) -> "SemanticCache":
        return cls(load_config(Path(path)), clock)

    @property
    def domains(self) -> list[str]:
        return list(self.config.domains)

    def check(self, prompt: str, domain: str, tenant: str | None = None) -> Hit | None:
        """The stored answer for a prompt that means the same as `prompt`, or None (a miss)."""
        settings = self._domain(domain)
        _require_text(prompt, "prompt")
        namespace = settings.namespace or domain
        vector = self._encoders.encode(domain, prompt)
        now = self._clock()
        found = self._store.nearest(namespace, tenant or DEFAULT_TENANT, vector, now)
        if found is not None and found[1] >= settings.similarity_threshold:
            entry, similarity = found
            self._store.used(namespace, entry, now)
            return Hit(entry.response, entry.prompt, similarity, now - entry.created, entry.metadata)
        with self._pending_lock:
            self._pending[(domain, prompt)] = vector
            if len(self._pending) > PENDING_MISSES:
                self._pending.popitem(last=False)
        return None

    def store(
        self, prompt: str, response: str, domain: str, tenant: str | None = None, ttl: float | None = None, metadata: dict | None = None
    ) -> int:
        """Store `response` for `prompt`; `ttl` (seconds) overrides the domain's. Returns the entry's id."""
        settings = self._domain(domain)
        _require_text(prompt, "prompt")
        _require_text(response, "response")
        if ttl is not None and ttl <= 0:
            raise CacheError(f"ttl must be > 0 seconds, got {ttl}")
        with self._pending_lock:
            vector = self._pending.pop((domain, prompt), None)
        if vector is None:
            vector = self._encoders.encode(domain, prompt)
        return self._store.add(
            settings.namespace or domain, tenant or DEFAULT_TENANT, vector, prompt, response, self._clock(),
            ttl if ttl is not None else settings.ttl_seconds, metadata,
        )

    def entries(self, domain: str) -> int:
        settings = self._domain(domain)
        return self._store.count(settings.namespace or domain)

    def close(self) -> None:
        self._store.close()

    def _domain(self, domain: str) -> DomainConfig:
        settings = self.config.domains.get(domain)
        if settings is None:
            raise CacheError(f"unknown domain '{domain}'; configured: {', '.join(self.config.domains)}")
        return settings


def _require_text(value: str, name: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise CacheError(f"{name} is empty")


def make_store(config: CacheConfig, dim: int, namespaces: dict[str, NamespaceSettings]) -> Store:
    if config.backend_type == "milvus":
        from cachetune.cache.milvus import MilvusStore

        return MilvusStore(config.milvus, dim, namespaces)
    memory = config.memory
    return MemoryStore(dim, namespaces, memory.index, memory.ann_above, memory.persist_path)
