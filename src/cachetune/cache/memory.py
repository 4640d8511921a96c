"""The embedded store: entries in this process, one index per (namespace, tenant), optionally saved to a file.

Every namespace (domain) and, inside it, every tenant has its own index, so a lookup never sees another
tenant's vectors. Each namespace keeps its own TTLs, size limit, eviction order and lock. A partition
searches exactly (numpy) while it is small and moves to HNSW (usearch) when an insert takes it past
`ann_above` entries: under the write lock, never in the middle of a lookup.
"""

import heapq
import json
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np

from cachetune.cache.config import MemoryStoreConfig
from cachetune.cache.eviction import EvictionOrder
from cachetune.cache.index import AnnIndex, ExactIndex
from cachetune.cache.store import Entry, NamespaceSettings


class _Namespace:
    def __init__(self, dim: int, settings: NamespaceSettings, config: MemoryStoreConfig) -> None:
        self.dim, self.settings, self.config = dim, settings, config
        self.entries: dict[int, Entry] = {}
        self.partitions: dict[str, ExactIndex | AnnIndex] = {}
        self.order = EvictionOrder(settings.eviction)
        self.expiry: list[tuple[float, int]] = []  # heap of (expires, id)
        self.lock = threading.RLock()

    def partition_for_insert(self, tenant: str) -> ExactIndex | AnnIndex:
        """The tenant's index, created if new, moved to HNSW once it holds `ann_above` entries (index "auto")."""
        index = self.partitions.get(tenant)
        if index is None:
            index = self.new_ann() if self.config.index == "ann" else ExactIndex(self.dim)
            self.partitions[tenant] = index
        elif self.config.index == "auto" and isinstance(index, ExactIndex) and len(index) >= self.config.ann_above:
            keys, vectors = index.vectors()
            index = self.new_ann()
            index.add_many(keys, vectors)
            self.partitions[tenant] = index
        return index

    def new_ann(self) -> AnnIndex:
        hnsw = self.config.hnsw
        return AnnIndex(self.dim, hnsw.connectivity, hnsw.expansion_add, hnsw.expansion_search)

    def remove(self, key: int) -> None:
        entry = self.entries.pop(key)
        self.partitions[entry.tenant].remove(key)
        self.order.removed(key)

    def purge_expired(self, now: float) -> None:
        """Drop every entry whose TTL has passed, so lookups only ever see live ones."""
        while self.expiry and self.expiry[0][0] <= now:
            _, key = heapq.heappop(self.expiry)
            if key in self.entries:
                self.remove(key)

    def insert(self, entry: Entry, vector: np.ndarray) -> None:
        self.partition_for_insert(entry.tenant).add(entry.id, vector)
        self.entries[entry.id] = entry
        self.order.added(entry.id, entry.hits)
        if entry.expires is not None:
            heapq.heappush(self.expiry, (entry.expires, entry.id))


class MemoryStore:
    """In-process store: exact search for small partitions, HNSW (usearch) for large ones; optionally
    saved to a file on close and loaded from it on start."""

    def __init__(self, dim: int, namespaces: dict[str, NamespaceSettings], config: MemoryStoreConfig) -> None:
        self._namespaces = {name: _Namespace(dim, settings, config) for name, settings in namespaces.items()}
        self._next_id = 1
        self._id_lock = threading.Lock()
        self._persist_path = Path(config.persist_path) if config.persist_path else None
        if self._persist_path and self._persist_path.exists():
            self._load(self._persist_path)

    def lookup(self, namespace: str, tenant: str, vector: np.ndarray, now: float, threshold: float) -> tuple[Entry, float] | None:
        space = self._namespaces[namespace]
        with space.lock:
            space.purge_expired(now)
            index = space.partitions.get(tenant)
            found = index.search(vector, 1) if index is not None else []
            if not found:
                return None
            key, score = found[0]
            entry = space.entries[key]
            if score >= threshold:
                entry.hits += 1
                space.order.used(key)
            return entry, score

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
        space = self._namespaces[namespace]
        with self._id_lock:
            key, self._next_id = self._next_id, self._next_id + 1
        entry = Entry(key, tenant, prompt, response, now, now + ttl if ttl else None, metadata)
        with space.lock:
            space.purge_expired(now)
            while len(space.entries) >= space.settings.max_entries:
                space.remove(space.order.victim())
            space.insert(entry, np.asarray(vector, dtype=np.float32))
        return key

    def count(self, namespace: str, now: float) -> int:
        space = self._namespaces[namespace]
        with space.lock:
            space.purge_expired(now)
            return len(space.entries)

    def close(self) -> None:
        if self._persist_path:
            self.save(self._persist_path)

    def save(self, path: Path) -> None:
        """One .npz: the vectors, and the entries as JSON in eviction order (so the order survives a restart)."""
        arrays, documents = {}, {}
        for name, space in self._namespaces.items():
            with space.lock:
                keys = space.order.keys()
                vectors = {}
                for index in space.partitions.values():
                    index_keys, index_vectors = index.vectors()
                    vectors.update(zip(index_keys.tolist(), index_vectors))
                arrays[f"{name}.vectors"] = np.stack([vectors[k] for k in keys]) if keys else np.zeros((0, 1), np.float32)
                documents[name] = [asdict(space.entries[k]) for k in keys]
        arrays["entries"] = np.frombuffer(json.dumps({"next_id": self._next_id, "namespaces": documents}).encode(), dtype=np.uint8)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp.npz")
        np.savez(temporary, **arrays)
        temporary.replace(path)

    def _load(self, path: Path) -> None:
        with np.load(path) as data:
            document = json.loads(data["entries"].tobytes())
            self._next_id = document["next_id"]
            for name, entries in document["namespaces"].items():
                if name not in self._namespaces:
                    continue  # a namespace no longer configured
                vectors = data[f"{name}.vectors"]
                space = self._namespaces[name]
                for row, fields in enumerate(entries):
                    space.insert(Entry(**fields), vectors[row])
