"""The embedded store: entries in this process, one index per (namespace, tenant), durable on disk when asked.

Every namespace (domain) and, inside it, every tenant has its own index, so a lookup never sees another
tenant's vectors. Each namespace keeps its own TTLs, size limit, eviction order and lock. A partition
searches exactly (numpy) while it is small and moves to HNSW (usearch) when an insert takes it past
`ann_above` entries: under the write lock, never in the middle of a lookup.

Durability (`persist_path`): a snapshot file (`.npz`: vectors, and entries in eviction order) plus an append-only
log beside it (`persist_path` + `.log`), one JSON line per store and per deletion (evictions included), written
before the call returns and synced per `fsync`: `always` (each store is on disk when acknowledged), `everysec` (at
most the last second is lost to a crash) or `no` (the OS decides). On start the snapshot is loaded and the log
replayed; a last line cut short by a crash is dropped with a warning. When the log grows past
`compact_above_bytes`, and on close, the snapshot is rewritten and the log emptied (writes wait meanwhile). Hits
are not logged: after a crash, LRU and LFU order is the order of the last snapshot, then of insertion.
"""

import base64
import heapq
import json
import logging
import os
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np

from cachetune.cache.eviction import EvictionOrder
from cachetune.cache.index import AnnIndex, ExactIndex
from cachetune.cache.store import Entry, NamespaceSettings, NewEntry, id_floor, within
from cachetune.cache_config import MemoryStoreConfig

log = logging.getLogger("cachetune.cache")


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
        return AnnIndex(self.dim, self.config.hnsw)

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

    def search(self, partition: str, vector: np.ndarray, count: int, below: bool) -> list[tuple[int, float]]:
        keys = [key for key in self.partitions if within(key, partition, below)] if below else [partition]
        found = [hit for key in keys if key in self.partitions for hit in self.partitions[key].search(vector, count)]
        return sorted(found, key=lambda hit: -hit[1])[:count]


class _Log:
    """The append-only log of stores and deletions (see the module's docstring)."""

    def __init__(self, path: Path, fsync: str) -> None:
        self.path = path
        self.fsync = fsync
        self._file = path.open("ab")
        self._lock = threading.Lock()
        self._dirty = False
        self._closed = threading.Event()
        if fsync == "everysec":
            threading.Thread(target=self._sync_every_second, daemon=True, name="cachetune-log-sync").start()

    def append(self, record: dict) -> None:
        with self._lock:
            self._file.write((json.dumps(record) + "\n").encode())
            self._file.flush()
            if self.fsync == "always":
                os.fsync(self._file.fileno())
            else:
                self._dirty = True

    def size(self) -> int:
        return self._file.tell()

    def truncate(self) -> None:
        with self._lock:
            self._file.truncate(0)
            self._file.seek(0)
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def _sync_every_second(self) -> None:
        while not self._closed.wait(1.0):
            with self._lock:
                if self._dirty and not self._file.closed:
                    os.fsync(self._file.fileno())
                    self._dirty = False

    @staticmethod
    def records(path: Path):
        """Every complete record; a last line cut short by a crash is dropped (with a warning) and cut off the file."""
        if not path.is_file():
            return
        raw = path.read_bytes()
        good = 0
        for line in raw.split(b"\n"):
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s: dropping a record cut short at byte %d (a crash while writing it)", path, good)
                break
            good += len(line) + 1
            yield record
        if good < len(raw):
            with path.open("ab") as handle:
                handle.truncate(good)


class MemoryStore:
    """In-process store: exact search for small partitions, HNSW (usearch) for large ones; durable with a
    snapshot and an append-only log when `persist_path` is set."""

    def __init__(self, dim: int, namespaces: dict[str, NamespaceSettings], config: MemoryStoreConfig) -> None:
        self._namespaces = {name: _Namespace(dim, settings, config) for name, settings in namespaces.items()}
        self._config = config
        self._next_id = id_floor()  # a snapshot, when there is one, says where it went on
        self._write_lock = threading.Lock()  # a write and its log line, or a compaction, at a time
        self._snapshot = Path(config.persist_path) if config.persist_path else None
        self._log: _Log | None = None
        if self._snapshot:
            log_path = self._snapshot.with_name(self._snapshot.name + ".log")
            if self._snapshot.exists():
                self._load(self._snapshot)
            for record in _Log.records(log_path):
                self._replay(record)
            self._snapshot.parent.mkdir(parents=True, exist_ok=True)
            self._log = _Log(log_path, config.fsync)

    def record_hit(self, namespace: str, entry: Entry, now: float, similarity: float) -> None:
        space = self._namespaces[namespace]
        with space.lock:
            stored = space.entries.get(entry.id)
            if stored is not None:
                stored.hits += 1
                stored.served_similarity = similarity
                space.order.used(entry.id)

    def get(self, namespace: str, partition: str, id: int) -> Entry | None:
        space = self._namespaces[namespace]
        with space.lock:
            entry = space.entries.get(id)
            return entry if entry is not None and entry.tenant == partition else None

    def add(self, namespace: str, new: NewEntry) -> int:
        space = self._namespaces[namespace]
        vector = np.asarray(new.vector, dtype=np.float32)
        with self._write_lock, space.lock:
            key, self._next_id = self._next_id, self._next_id + 1
            entry = Entry(key, new.partition, new.prompt, new.response, new.created, new.expires, new.metadata)
            space.purge_expired(new.created)
            evicted = []
            while len(space.entries) >= space.settings.max_entries:
                evicted.append(space.order.victim())
                space.remove(evicted[-1])
            space.insert(entry, vector)
            if self._log:
                if evicted:
                    self._log.append({"op": "delete", "ns": namespace, "ids": evicted})
                self._log.append(
                    {"op": "add", "ns": namespace, "entry": asdict(entry), "vector": base64.b64encode(vector.tobytes()).decode()}
                )
        if self._log and self._log.size() > self._config.compact_above_bytes:
            self.compact()
        return key

    def delete(self, namespace: str, partition: str, ids: list[int] | None = None, *, below: bool = False) -> int:
        space = self._namespaces[namespace]
        with self._write_lock, space.lock:
            if ids is None:
                ids = [
                    key for name, index in space.partitions.items() if within(name, partition, below) for key in index.vectors()[0].tolist()
                ]
            gone = [key for key in ids if key in space.entries and within(space.entries[key].tenant, partition, below)]
            for key in gone:
                space.remove(key)
            if self._log and gone:
                self._log.append({"op": "delete", "ns": namespace, "ids": gone})
        return len(gone)

    def similar(
        self, namespace: str, partition: str, vector: np.ndarray, now: float, min_similarity: float, limit: int, *, below: bool = False
    ) -> list[tuple[Entry, float]]:
        space = self._namespaces[namespace]
        with space.lock:
            space.purge_expired(now)
            found = space.search(partition, vector, limit, below)
            return [(space.entries[key], score) for key, score in found if score >= min_similarity]

    def count(self, namespace: str, now: float) -> int:
        space = self._namespaces[namespace]
        with space.lock:
            space.purge_expired(now)
            return len(space.entries)

    def close(self) -> None:
        if self._log:
            self.compact()
            self._log.close()
            self._log = None

    def compact(self) -> None:
        """Rewrite the snapshot with everything stored, then empty the log; writes wait meanwhile."""
        with self._write_lock:
            self.save(self._snapshot)
            self._log.truncate()

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
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
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

    def _replay(self, record: dict) -> None:
        space = self._namespaces.get(record["ns"])
        if space is None:
            return  # a namespace no longer configured
        if record["op"] == "add":
            entry = Entry(**record["entry"])
            if entry.id not in space.entries:
                space.insert(entry, np.frombuffer(base64.b64decode(record["vector"]), dtype=np.float32))
            self._next_id = max(self._next_id, entry.id + 1)
        else:
            for key in record["ids"]:
                if key in space.entries:
                    space.remove(key)
