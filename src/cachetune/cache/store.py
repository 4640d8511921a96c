"""What every store keeps and answers: the `Store` protocol, its `Entry`, and a namespace's limits.

Implementations: `MemoryStore` (embedded, memory.py), `RedisStore` (redis.py) and `MilvusStore` (milvus.py).
Isolation is structural: a lookup searches one namespace (domain) and, inside it, one partition only (a tenant,
or for the gateway a tenant's scope and conversation: `Partition`); nothing about a partition is ever added to the
prompt. Each namespace keeps its own TTLs, size limit and eviction order.
"""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from cachetune.cache.eviction import Policy
from cachetune.errors import CacheError, StoreError

T = TypeVar("T")
NEVER = 1e18  # the expiry of an entry without a TTL, where a store needs a number
PARTITION_SEPARATOR = "\x1f"
GATEWAY_ID = re.compile(r"(?P<id>\d+)@(?P<scope>[0-9a-f]{24})(?:/(?P<context>exact:[0-9a-f]{24}))?")


@dataclass(frozen=True)
class Partition:
    """What must match exactly below a domain for an entry to be served: the tenant, and for the gateway the request's
    scope (a hash of the model, system messages and settings) and conversation context (`exact:HASH`).

    `key()` is what the stores partition by; it is the only place the parts are joined.
    """

    tenant: str = ""
    scope: str | None = None
    context: str | None = None

    def key(self) -> str:
        parts = [self.tenant, *([self.scope] if self.scope else []), *([self.context] if self.context else [])]
        return PARTITION_SEPARATOR.join(parts)

    @property
    def is_tenant(self) -> bool:
        """A whole tenant (no scope): what an invalidation by tenant reaches, its gateway partitions included."""
        return self.scope is None

    @classmethod
    def of(cls, value: "Partition | str | None") -> "Partition":
        """A partition from what callers pass: a `Partition`, a tenant's name, or None (the default tenant)."""
        return value if isinstance(value, Partition) else cls(value or "")

    def token(self, entry_id: int) -> str:
        """The id a gateway hit is reported by (`x-cachetune-id`): the entry and its partition below the tenant."""
        return f"{entry_id}@" + "/".join(part for part in (self.scope, self.context) if part)

    @classmethod
    def from_id(cls, id: int | str, tenant: str | None) -> tuple["Partition", int]:
        """(partition, entry id) of an id that `tenant` reports: an entry id (in the tenant's own partition) or a
        gateway hit's `token` (a partition below the tenant: never another tenant's).

        Raises:
            CacheError: `id` is neither.
        """
        if isinstance(id, int) or id.isdigit():
            return cls(tenant or ""), int(id)
        match = GATEWAY_ID.fullmatch(id)
        if match is None:
            raise CacheError(f"id: '{id[:80]}' is neither an entry id nor a gateway hit's x-cachetune-id (ID@SCOPE[/CONTEXT])")
        return cls(tenant or "", match["scope"], match["context"]), int(match["id"])


@dataclass(frozen=True)
class NewEntry:
    """An entry to store: its partition's key, its vector and texts, when it was made and for how long it lives."""

    partition: str
    vector: np.ndarray
    prompt: str
    response: str
    created: float
    ttl: float | None = None
    metadata: dict | None = None

    @property
    def expires(self) -> float | None:
        return self.created + self.ttl if self.ttl else None


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
    served_similarity: float | None = None  # the similarity its last hit was served at (what feedback on it logs)


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


def id_floor() -> int:
    """Where a store's id counter starts when it has none (new, or lost with its data): milliseconds since the epoch
    times 1024, so ids stay below 2**53 (exact in JSON) and above every id the lost counter gave out, unless it gave
    out 1,024 a millisecond. An old id held by a client can then never delete a new entry."""
    return int(time.time() * 1000) * 1024


def within(key: str, partition: str, below: bool) -> bool:
    """Whether an entry of partition `key` is in `partition` (and, with `below`, in a partition under it)."""
    return key == partition or (below and key.startswith(partition + PARTITION_SEPARATOR))


class Store(Protocol):
    """A partition is a `Partition.key()`; `below=True` reaches the partitions under it too (a tenant's gateway
    partitions), for invalidation."""

    def similar(
        self, namespace: str, partition: str, vector: np.ndarray, now: float, min_similarity: float, limit: int, *, below: bool = False
    ) -> list[tuple[Entry, float]]:
        """The partition's live entries at least `min_similarity` to `vector`, most similar first, at most `limit`: the
        candidates of a lookup (min_similarity -1: the nearest `limit`) and the targets of an invalidation."""
        ...

    def get(self, namespace: str, partition: str, id: int) -> Entry | None:
        """The partition's entry `id`, or None (no such entry, another partition's, or expired and gone)."""
        ...

    def record_hit(self, namespace: str, entry: Entry, now: float, similarity: float) -> None:
        """Count a hit on `entry` served at `similarity`, and move it in its namespace's eviction order (LRU: last use;
        LFU: hits)."""
        ...

    def add(self, namespace: str, entry: NewEntry) -> int:
        """Store an entry, evicting (expired entries first) to stay within the namespace's max entries; returns its id."""
        ...

    def delete(self, namespace: str, partition: str, ids: list[int] | None = None, *, below: bool = False) -> int:
        """Delete the partition's entries in `namespace` with these ids (other partitions' ids are left alone), or all
        of them when `ids` is None; returns how many went."""
        ...

    def count(self, namespace: str, now: float) -> int:
        """Live entries in `namespace` at time `now`, every tenant's."""
        ...

    def close(self) -> None:
        """Release connections; the embedded store persists here when it has a persist_path."""
        ...
