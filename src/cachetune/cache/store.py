"""What every store keeps and answers: the `Store` protocol, its `Entry`, and a namespace's limits.

Implementations: `MemoryStore` (embedded, memory.py) and `MilvusStore` (milvus.py). Isolation is structural:
a lookup searches one namespace (domain) and, inside it, one tenant only; nothing about a tenant is ever
added to the prompt. Each namespace keeps its own TTLs, size limit and eviction order.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from cachetune.cache.eviction import Policy
from cachetune.errors import StoreError

T = TypeVar("T")


@dataclass
class Entry:
    id: int
    tenant: str
    prompt: str
    response: str
    created: float
    expires: float | None
    metadata: dict | None = None
    hits: int = 0


@dataclass(frozen=True)
class NamespaceSettings:
    max_entries: int
    eviction: Policy


def guarded(failures: tuple[type[Exception], ...], where: str, call: Callable[[], T]) -> T:
    """`call()`, with the backend's own failures (after its retries) raised as one `StoreError` that says where."""
    try:
        return call()
    except failures as error:
        raise StoreError(f"{where}: {type(error).__name__}: {error}") from None


class Store(Protocol):
    def similar(
        self, namespace: str, tenant: str, vector: np.ndarray, now: float, min_similarity: float, limit: int
    ) -> list[tuple[Entry, float]]:
        """`tenant`'s live entries at least `min_similarity` to `vector`, most similar first, at most `limit`: the
        candidates of a lookup (min_similarity -1: the nearest `limit`) and the targets of an invalidation."""
        ...

    def record_hit(self, namespace: str, entry: Entry, now: float) -> None:
        """Count a hit on `entry` and move it in its namespace's eviction order (LRU: last use; LFU: hits)."""
        ...

    def add(
        self,
        namespace: str,
        tenant: str,
        vector: np.ndarray,
        prompt: str,
        response: str,
        now: float,
        ttl: float | None,
        metadata: dict | None,
    ) -> int:
        """Store an entry, evicting (expired entries first) to stay within the namespace's max entries; returns its id."""
        ...

    def delete(self, namespace: str, tenant: str, ids: list[int] | None = None) -> int:
        """Delete `tenant`'s entries in `namespace` with these ids (ids of other tenants are left alone), or all of
        them when `ids` is None; returns how many went."""
        ...

    def count(self, namespace: str, now: float) -> int:
        """Live entries in `namespace` at time `now`, every tenant's."""
        ...

    def close(self) -> None:
        """Release connections; the embedded store persists here when it has a persist_path."""
        ...
