"""A Milvus store: the same cache on a vector database that scales out beyond one machine.

`uri` as a local file runs Milvus Lite inside the process (what the tests use); `http://host:19530`
talks to a Milvus server or cluster with the same client and the same code. One collection per
namespace; the tenant and the expiry time are scalar fields used as filters in every search, so
isolation and TTL are enforced by the database (filter values are quoted, never spliced into the expression
unescaped: strings go in as literals whose quotes and backslashes are escaped). A hit updates `last_used` and `hits` (LRU, LFU eviction) with
a partial upsert of those two fields. An id is the time in microseconds shifted left by 10 bits plus 10 random
bits, increasing within a process (under a lock): ids order entries by insertion (FIFO ties), nothing is
scanned at start to find the next one, and two service replicas on one Milvus collide only if they store in the
same microsecond and draw the same 10 bits.
"""

import functools
import json
import secrets
import threading
import time

import numpy as np

from cachetune.cache.store import NEVER, PARTITION_SEPARATOR, Entry, NamespaceSettings, NewEntry, guarded, within
from cachetune.cache_config import MilvusStoreConfig

SORT_FIELD = {"lru": "last_used", "fifo": "created", "lfu": "hits"}
FIELDS = ["id", "tenant", "prompt", "response", "metadata", "created", "expires", "last_used", "hits"]
SERVED = "served_similarity"  # in collections made since it was added; older ones go without it
NEVER_SERVED = -2.0  # its value before a first hit (a cosine is never below -1)
TEXT_LIMIT = 65_535
PURGE_SECONDS = 60.0  # how often an add deletes the expired rows (a delete by filter takes a server ~0.2 s)


def _milvus_exception():
    from pymilvus import MilvusException

    return MilvusException


def _store_errors(method):
    """Milvus' own failures (after the client's retries) raised as the store contract's StoreError."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        from pymilvus import MilvusException

        return guarded((MilvusException,), f"milvus at {self._uri}", lambda: method(self, *args, **kwargs))

    return wrapper


class MilvusStore:
    def __init__(self, config: MilvusStoreConfig, dim: int, namespaces: dict[str, NamespaceSettings]) -> None:
        from pymilvus import MilvusClient

        self._uri = config.uri.split("@", 1)[-1]
        self._consistency = config.consistency_level
        self._next_purge: dict[str, float] = {}
        self._partial_updates = True  # Milvus 2.6 and Lite update some fields of a row; older servers take whole rows
        self._client = MilvusClient(uri=config.uri, token=config.token or "")
        self._settings = namespaces
        self._collections = {name: f"{config.collection_prefix}{name}" for name in namespaces}
        self._dim = dim
        for collection in self._collections.values():
            if not self._client.has_collection(collection):
                self._create(collection)
        described = {name: self._client.describe_collection(collection) for name, collection in self._collections.items()}
        self._served = {name: SERVED in {field["name"] for field in info["fields"]} for name, info in described.items()}
        self._id_lock = threading.Lock()
        self._last_id = 0

    def _new_id(self) -> int:
        with self._id_lock:
            self._last_id = max((time.time_ns() // 1000) << 10 | secrets.randbits(10), self._last_id + 1)
            return self._last_id

    def _create(self, collection: str) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("tenant", DataType.VARCHAR, max_length=512)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self._dim)
        schema.add_field("prompt", DataType.VARCHAR, max_length=TEXT_LIMIT)
        schema.add_field("response", DataType.VARCHAR, max_length=TEXT_LIMIT)
        schema.add_field("metadata", DataType.JSON)
        for field in ("created", "expires", "last_used", SERVED):
            schema.add_field(field, DataType.DOUBLE)
        schema.add_field("hits", DataType.INT64)
        index = self._client.prepare_index_params()
        index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="IP")
        self._client.create_collection(collection, schema=schema, index_params=index, consistency_level=self._consistency)

    @_store_errors
    def record_hit(self, namespace: str, entry: Entry, now: float, similarity: float) -> None:
        entry.hits += 1
        row = {"id": entry.id, "hits": entry.hits, "last_used": now} | ({SERVED: similarity} if self._served[namespace] else {})
        collection = self._collections[namespace]
        if self._partial_updates:
            try:
                self._client.upsert(collection, [row], partial_update=True)
                return
            except _milvus_exception() as error:
                if "mismatch" not in str(error):
                    raise
                self._partial_updates = False  # a server before Milvus 2.6: every field is written, read first
        stored = self._client.query(collection, filter=f"id == {int(entry.id)}", output_fields=["*"], consistency_level=self._consistency)
        if stored:
            self._client.upsert(collection, [{**stored[0], **row}])

    @_store_errors
    def get(self, namespace: str, partition: str, id: int) -> Entry | None:
        fields = FIELDS + ([SERVED] if self._served[namespace] else [])
        where = f"id == {int(id)} and tenant == {_quote(partition)}"
        rows = self._client.query(self._collections[namespace], filter=where, output_fields=fields, consistency_level=self._consistency)
        return _entry(rows[0]) if rows else None

    @_store_errors
    def add(self, namespace: str, new: NewEntry) -> int:
        collection, now, limit = self._collections[namespace], new.created, self._settings[namespace].max_entries
        over = self._count(collection, "") - limit + 1
        if over > 0 or now >= self._next_purge.get(namespace, 0.0):  # expired rows go when room is needed, or now and then
            self._client.delete(collection, filter=f"expires <= {float(now)!r}")
            self._next_purge[namespace] = now + PURGE_SECONDS
            over = self._count(collection, "") - limit + 1
        if over > 0:
            order = SORT_FIELD[self._settings[namespace].eviction]
            rows = self._all_rows(collection, ["id", order, "last_used"])
            victims = sorted(rows, key=lambda row: (row[order], row["last_used"], row["id"]))[:over]
            self._client.delete(collection, ids=[row["id"] for row in victims])
        key = self._new_id()
        row = {
            "id": key,
            "tenant": new.partition,
            "vector": np.asarray(new.vector, dtype=np.float32).tolist(),
            "prompt": new.prompt[:TEXT_LIMIT],
            "response": new.response[:TEXT_LIMIT],
            "metadata": new.metadata or {},
            "created": now,
            "expires": new.expires or NEVER,
            "last_used": now,
            "hits": 0,
        } | ({SERVED: NEVER_SERVED} if self._served[namespace] else {})
        self._client.insert(collection, [row])
        return key

    @_store_errors
    def count(self, namespace: str, now: float) -> int:
        return self._count(self._collections[namespace], f"expires > {float(now)!r}")

    @_store_errors
    def delete(self, namespace: str, partition: str, ids: list[int] | None = None, *, below: bool = False) -> int:
        where = _partition_filter(partition, below) + (f" and id in {[int(key) for key in ids]}" if ids is not None else "")
        collection = self._collections[namespace]
        found = [row["id"] for row in self._all_rows(collection, ["id", "tenant"], where) if within(row["tenant"], partition, below)]
        if found:
            self._client.delete(collection, ids=found)
        return len(found)

    @_store_errors
    def similar(
        self, namespace: str, partition: str, vector: np.ndarray, now: float, min_similarity: float, limit: int, *, below: bool = False
    ) -> list[tuple[Entry, float]]:
        found = self._search(namespace, partition, vector, now, limit, below)
        return [(e, s) for e, s in found if s >= min_similarity and within(e.tenant, partition, below)]

    def _search(self, namespace: str, partition: str, vector: np.ndarray, now: float, limit: int, below: bool) -> list[tuple[Entry, float]]:
        results = self._client.search(
            self._collections[namespace],
            data=[np.asarray(vector, dtype=np.float32).tolist()],
            limit=limit,
            filter=f"{_partition_filter(partition, below)} and expires > {float(now)!r}",
            output_fields=FIELDS,
            search_params={"metric_type": "IP"},
            consistency_level=self._consistency,
        )
        return [(_entry(match["entity"]), float(match["distance"])) for match in (results[0] if results else [])]

    def _all_rows(self, collection: str, fields: list[str], where: str = "id >= 0") -> list[dict]:
        """`fields` of every row matching `where`: a plain query stops at Milvus' result window (16,384 rows); an
        iterator does not."""
        iterator = self._client.query_iterator(
            collection, batch_size=8192, filter=where, output_fields=fields, consistency_level=self._consistency
        )
        rows = []
        try:
            while batch := iterator.next():
                rows += batch
        finally:
            iterator.close()
        return rows

    def _count(self, collection: str, filter: str) -> int:
        rows = self._client.query(collection, filter=filter, output_fields=["count(*)"], consistency_level=self._consistency)
        return int(rows[0]["count(*)"])

    def close(self) -> None:
        self._client.close()


def _partition_filter(partition: str, below: bool) -> str:
    """The filter of a partition, and with `below` of every partition under it (a prefix match, whose wildcards in a
    name are checked again by `within` on the rows it returns)."""
    exact = f"tenant == {_quote(partition)}"
    return f"({exact} or tenant like {_quote(partition + PARTITION_SEPARATOR + '%')})" if below else exact


def _quote(value: str) -> str:
    """A Milvus string literal: backslashes and quotes escaped, so a value cannot end the literal; every other
    character as it is (Milvus' parser refuses JSON's \\uXXXX escapes, e.g. of the gateway's partition separator)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _entry(row: dict) -> Entry:
    metadata = row.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    expires = row["expires"]
    return Entry(
        row["id"],
        row["tenant"],
        row["prompt"],
        row["response"],
        row["created"],
        None if expires >= NEVER else expires,
        metadata or None,
        row["hits"],
        row[SERVED] if row.get(SERVED, NEVER_SERVED) > NEVER_SERVED else None,
    )
