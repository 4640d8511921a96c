"""A Redis store: Redis 8 (query engine built in), Redis Stack 7.4, or a managed Redis with vector search.

Layout, per namespace (domain), under the configured key prefix P:
    P{ns}:e:{id}   a hash per entry: tenant (TAG), vector (FLOAT32), prompt, response, metadata (JSON),
                   created, expires (NUMERIC), hits, last_used
    P{ns}:idx      the search index over P{ns}:e:*: HNSW or FLAT, cosine distance
    P{ns}:order    a sorted set of the namespace's ids in eviction order (lru: last use; fifo: id; lfu: hits, then
                   last use: hits * 2^32 + the second of the last use)
    P{ns}:expiry   a sorted set of ids by expiry time, to purge the order of entries Redis expired
    P{ns}:next_id  the id counter (INCR: unique across service replicas)
A lookup's candidates are one KNN query pre-filtered by tenant and expiry inside the query engine:
    (@tenant:{HEX} @expires:[(NOW +inf])=>[KNN k @vector $vector AS distance]
The tenant goes into its TAG as the hex of its UTF-8 bytes: no tenant name can end the tag and widen the filter
(`a}|(@tenant:{b`), split it (TAG separators are commas) or match another tenant by case (TAGs are not case
sensitive). Each entry has an EXPIRE of its TTL, so Redis frees it on time; the expiry filter keeps lookups exact
to the cache's own clock in between. `max_entries` is kept by this store, not by Redis' global maxmemory policy:
an add runs one Lua script that purges expired ids, stores the entry and evicts from the head of the order
while the namespace is over its limit (cost: two sorted-set members per entry, O(log n) per add and per hit).
Connection errors are retried with exponential backoff up to `retries` times, then raised as `StoreError`.
"""

import json
import logging
import math
import os
import threading

import numpy as np

from cachetune.cache.store import NEVER, PARTITION_SEPARATOR, Entry, NamespaceSettings, NewEntry, guarded, id_floor
from cachetune.cache_config import RedisStoreConfig
from cachetune.errors import StoreError

RETURNED = ("tenant", "prompt", "response", "metadata", "created", "expires", "hits", "served_similarity")  # an entry's fields
LFU_HITS = 2**32  # lfu order: hits first, then the second of the last use (exact in a double up to a million hits)
log = logging.getLogger("cachetune.cache")

# KEYS: entry key prefix, order, expiry, next_id. ARGV: now, ttl_ms (0: none), max_entries, eviction, the id floor,
# field/value pairs. A missing counter (a new namespace, or a Redis that came back empty) starts at the floor, a
# number that grows with time: an id given out before the loss is never given out again.
ADD_SCRIPT = """
local prefix, order, expiry, counter = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, ttl_ms, limit, policy = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('SET', counter, ARGV[5], 'NX')
for _, id in ipairs(redis.call('ZRANGEBYSCORE', expiry, '-inf', now)) do
  redis.call('ZREM', order, id)
  redis.call('ZREM', expiry, id)
  redis.call('DEL', prefix .. id)
end
while redis.call('ZCARD', order) >= limit do
  local victim = redis.call('ZPOPMIN', order)[1]
  redis.call('ZREM', expiry, victim)
  redis.call('DEL', prefix .. victim)
end
local id = redis.call('INCR', counter)
local member = string.format('%020d', id)
local key = prefix .. member
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', key, 'id', id, unpack(fields))
local score = now
if policy == 'fifo' then score = id elseif policy == 'lfu' then score = math.floor(now) end
redis.call('ZADD', order, score, member)
if ttl_ms > 0 then
  redis.call('PEXPIRE', key, ttl_ms)
  redis.call('ZADD', expiry, now + ttl_ms / 1000, member)
end
return id
"""


def tenant_tag(tenant: str) -> str:
    """The TAG value of a partition: the hex of its UTF-8 bytes (plus a letter, so the empty tenant has one too)."""
    return "t" + tenant.encode("utf-8").hex()


def partition_of(tag: str) -> str:
    return bytes.fromhex(tag[1:]).decode("utf-8")


def tag_filter(partition: str, below: bool) -> str:
    """The TAG query of a partition, and with `below` of every partition under it: a prefix of hex digits, which
    ends at a byte boundary, so `a` never reaches `ab`'s partitions."""
    tag = tenant_tag(partition)
    return f"@tenant:{{{tag} | {tag}{PARTITION_SEPARATOR.encode().hex()}*}}" if below else f"@tenant:{{{tag}}}"


def _within(owner: str, partition: str, below: bool) -> bool:
    tag = tenant_tag(partition)
    return owner == tag or (below and owner.startswith(tag + PARTITION_SEPARATOR.encode().hex()))


class RedisStore:
    def __init__(self, config: RedisStoreConfig, dim: int, namespaces: dict[str, NamespaceSettings]) -> None:
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        self._redis = redis
        self._config = config
        self._dim = dim
        self._settings = namespaces
        self._client = redis.Redis.from_url(
            config.url,
            username=os.environ.get(config.username_env) if config.username_env else None,
            password=os.environ.get(config.password_env) if config.password_env else None,
            socket_timeout=config.timeout_seconds,
            socket_connect_timeout=config.timeout_seconds,
            retry=Retry(ExponentialBackoff(cap=config.backoff_cap_seconds, base=config.backoff_base_seconds), config.retries),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            health_check_interval=10,
        )
        self._add = self._client.register_script(ADD_SCRIPT)
        self._lock = threading.Lock()
        self._call(self._create_indexes)

    def _key(self, namespace: str, suffix: str) -> str:
        return f"{self._config.key_prefix}{namespace}:{suffix}"

    def _call(self, function, *args):
        """Run `function` against Redis; its errors (connections after the client's retries) become StoreError. A
        Redis that came back without its search indexes (a restart without persistence, a failover to an empty
        replica, FLUSHALL) gets them again, and the call is tried once more: the cache comes back by itself."""
        where = f"redis at {self._config.url.split('@', 1)[-1]}"  # never the credentials

        def attempt():
            try:
                return function(*args)
            except self._redis.ResponseError as error:
                if "no such index" not in str(error).lower() and "unknown index name" not in str(error).lower():
                    raise
                log.warning("redis at %s has lost its search index (it came back empty?): making it again", where)
                self._create_indexes()
                return function(*args)

        return guarded((self._redis.RedisError,), where, attempt)

    def _create_indexes(self) -> None:
        from redis.commands.search.field import NumericField, TagField, VectorField
        from redis.commands.search.index_definition import IndexDefinition, IndexType

        index = self._config.index
        attributes = {"TYPE": "FLOAT32", "DIM": self._dim, "DISTANCE_METRIC": "COSINE"}
        if index.algorithm == "HNSW":
            attributes |= {"M": index.m, "EF_CONSTRUCTION": index.ef_construction, "EF_RUNTIME": index.ef_runtime}
        for namespace in self._settings:
            name = self._key(namespace, "idx")
            try:
                info = self._client.ft(name).info()
            except self._redis.ResponseError:  # no such index yet
                schema = (TagField("tenant"), NumericField("expires"), VectorField("vector", index.algorithm, attributes))
                definition = IndexDefinition(prefix=[self._key(namespace, "e:")], index_type=IndexType.HASH)
                self._client.ft(name).create_index(schema, definition=definition)
                continue
            dims = [int(a[a.index("dim") + 1]) for a in info.get("attributes", []) if "dim" in a]
            if dims and dims != [self._dim]:
                raise StoreError(f"redis index {name} holds vectors of dimension {dims[0]}, not {self._dim}; use another key_prefix")

    def _search(
        self, namespace: str, partition: str, vector: np.ndarray, now: float, limit: int, below: bool = False
    ) -> list[tuple[str, Entry, float]]:
        """(key, entry, similarity) of the partition's live entries nearest to `vector`, nearest first."""
        from redis.commands.search.query import Query

        query = (
            Query(f"({tag_filter(partition, below)} @expires:[({now!r} +inf])=>[KNN {int(limit)} @vector $vector AS distance]")
            .return_fields(*RETURNED, "distance")
            .sort_by("distance")
            .paging(0, limit)
            .dialect(2)
        )
        blob = np.asarray(vector, dtype=np.float32).tobytes()
        result = self._call(lambda: self._client.ft(self._key(namespace, "idx")).search(query, {"vector": blob}))
        return [(document.id, _entry(vars(document)), 1.0 - float(document.distance)) for document in result.docs]

    def similar(
        self, namespace: str, partition: str, vector: np.ndarray, now: float, min_similarity: float, limit: int, *, below: bool = False
    ) -> list[tuple[Entry, float]]:
        found = self._search(namespace, partition, vector, now, limit, below)
        return [(entry, similarity) for _, entry, similarity in found if similarity >= min_similarity]

    def get(self, namespace: str, partition: str, id: int) -> Entry | None:
        fields = self._call(lambda: self._client.hmget(self._key(namespace, f"e:{int(id):020d}"), RETURNED))
        row = {name: value.decode() for name, value in zip(RETURNED, fields) if value is not None}
        if row.get("tenant") != tenant_tag(partition):
            return None
        return _entry({**row, "id": str(id)})

    def delete(self, namespace: str, partition: str, ids: list[int] | None = None, *, below: bool = False) -> int:
        from redis.commands.search.query import Query

        if ids is None:  # every entry of the partition, found through the index
            query = Query(tag_filter(partition, below)).no_content().paging(0, 10_000).dialect(2)
            keys = []
            while batch := [d.id for d in self._call(lambda: self._client.ft(self._key(namespace, "idx")).search(query)).docs]:
                keys += batch
                self._call(self._delete_keys, namespace, batch)
            return len(keys)
        candidates = [self._key(namespace, f"e:{int(key):020d}") for key in ids]
        owners = self._call(lambda: [self._client.hget(key, "tenant") for key in candidates])
        mine = [key for key, owner in zip(candidates, owners) if owner is not None and _within(owner.decode(), partition, below)]
        if mine:
            self._call(self._delete_keys, namespace, mine)
        return len(mine)

    def _delete_keys(self, namespace: str, keys: list[str]) -> None:
        members = [key.rsplit(":", 1)[-1] for key in keys]
        pipeline = self._client.pipeline(transaction=True)
        pipeline.delete(*keys)
        pipeline.zrem(self._key(namespace, "order"), *members)
        pipeline.zrem(self._key(namespace, "expiry"), *members)
        pipeline.execute()

    def record_hit(self, namespace: str, entry: Entry, now: float, similarity: float) -> None:
        entry.hits += 1
        member = f"{entry.id:020d}"
        eviction = self._settings[namespace].eviction

        def write() -> None:
            pipeline = self._client.pipeline(transaction=False)
            fields = {"hits": entry.hits, "last_used": now, "served_similarity": similarity}
            pipeline.hset(self._key(namespace, f"e:{member}"), mapping=fields)
            if eviction != "fifo":
                score = now if eviction == "lru" else entry.hits * LFU_HITS + math.floor(now)
                pipeline.zadd(self._key(namespace, "order"), {member: score}, xx=True)
            pipeline.execute()

        self._call(write)

    def add(self, namespace: str, new: NewEntry) -> int:
        settings = self._settings[namespace]
        now, ttl = new.created, new.ttl
        fields = {
            "tenant": tenant_tag(new.partition),
            "vector": np.asarray(new.vector, dtype=np.float32).tobytes(),
            "prompt": new.prompt,
            "response": new.response,
            "metadata": json.dumps(new.metadata or {}),
            "created": now,
            "expires": new.expires or NEVER,
            "hits": 0,
            "last_used": now,
        }
        keys = [self._key(namespace, "e:"), self._key(namespace, "order"), self._key(namespace, "expiry"), self._key(namespace, "next_id")]
        arguments = [now, int(ttl * 1000) if ttl else 0, settings.max_entries, settings.eviction, id_floor()]
        arguments += [part for item in fields.items() for part in item]
        return int(self._call(lambda: self._add(keys=keys, args=arguments)))

    def count(self, namespace: str, now: float) -> int:
        order, expiry = self._key(namespace, "order"), self._key(namespace, "expiry")
        return self._call(lambda: self._client.zcard(order) - self._client.zcount(expiry, "-inf", now))

    def close(self) -> None:
        self._client.close()


def _entry(row: dict) -> Entry:
    """An entry from its hash's fields (a search document's, or HMGET's), its partition decoded from the TAG."""
    expires = float(row["expires"])
    served = row.get("served_similarity")
    return Entry(
        int(str(row["id"]).rsplit(":", 1)[-1]),
        partition_of(row["tenant"]),
        row["prompt"],
        row["response"],
        float(row["created"]),
        None if expires >= NEVER else expires,
        json.loads(row["metadata"]) or None,
        int(row["hits"]),
        float(served) if served not in (None, "") else None,
    )
