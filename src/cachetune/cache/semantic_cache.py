"""`SemanticCache`: answer a prompt with a stored response when a stored prompt means the same.

    cache = SemanticCache.from_config("cache.yaml")
    vector = cache.embed("How do I reverse a list in Python?", domain="coding")
    hit = cache.check("How do I reverse a list in Python?", domain="coding", tenant="acme", vector=vector)
    if hit is None:
        response = call_the_llm(...)
        cache.store("How do I reverse a list in Python?", response, domain="coding", tenant="acme", vector=vector)

Each domain has its own model (base + adapter), threshold, TTL, size limit and eviction; domain and tenant
are hard partitions of the store, never text added to the prompt. As in RedisVL's `SemanticCache`, `check`
and `store` take an optional `vector=`: pass the one `embed` gave to encode a prompt once for both calls.
"""

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cachetune.cache.encoders import DomainEncoders
from cachetune.cache.store import Entry, NamespaceSettings, NewEntry, Partition, Store
from cachetune.cache_config import CacheConfig, DomainConfig, load_config
from cachetune.decision import Decider, Verdict
from cachetune.errors import CacheError, ModelError, StoreError, UnknownDomainError
from cachetune.records import Feedback, to_json_line
from cachetune.text import clean_text

INVALIDATE_LIMIT = 1_000  # entries one invalidation by prompt may remove
SERVED_REMEMBERED = 100_000  # served hits whose tier a later feedback can still find
log = logging.getLogger("cachetune.cache")


@dataclass(frozen=True)
class Hit:
    """A stored answer served for a prompt."""

    response: str
    prompt: str  # the stored prompt that matched
    similarity: float
    age_seconds: float
    metadata: dict | None = None
    id: int | None = None
    tier: str = "semantic"  # exact: the stored prompt is the same text (`clean_text`), semantic: a rewording


@dataclass(frozen=True)
class Refused:
    """A candidate the decision did not serve: its entry, similarity, and why (`guard:NAME`, `threshold`, `outranked`)."""

    id: int
    prompt: str
    similarity: float
    reason: str


@dataclass(frozen=True)
class Lookup:
    """What a lookup found: the hit (None: a miss), the nearest entry's similarity (None: nothing stored), the
    similarity threshold the decision held it to, the candidates it refused, and why it did not look (`bypass`:
    `too_long`, a prompt past the encoder's window under `long_prompts: bypass`)."""

    hit: Hit | None
    similarity: float | None
    threshold: float
    refused: tuple[Refused, ...] = ()
    bypass: str | None = None
    nearest: str | None = None  # the nearest entry's stored prompt
    second_opinion_ms: float | None = None  # when the domain's second model re-scored a candidate near the threshold
    judged: float | None = None  # the similarity of the best candidate the threshold judged (after a second opinion)


def _judged(verdict: Verdict, found: list) -> float | None:
    """The similarity the threshold judged: the served candidate's, else the first one the threshold refused, else
    (no refusal at all) the best candidate's; None when a guard refused every candidate."""
    if verdict.similarity is not None:
        return verdict.similarity
    by_threshold = [r.similarity for r in verdict.refusals if r.reason == "threshold"]
    if by_threshold:
        return by_threshold[0]
    return found[0][1] if found and not verdict.refusals else None


class SemanticCache:
    """A multi-domain semantic cache: one base model, an adapter per domain, a store partitioned by namespace and tenant.

    Built from parts, as RedisVL's `SemanticCache(vectorizer=, redis_client=)`: what is not given is built from
    `config`, and `close()` (or leaving a `with` block) closes only what the cache built itself.

    Args:
        config: the validated `semantic_cache` block (see `cachetune.cache_config`).
        encoders: the domains' encoders (default: `DomainEncoders(config)`); it must have every configured domain.
        store: where entries live (default: the store `config.backend_type` names).
        clock: seconds since the epoch; tests pass their own to move time.

    Raises:
        ModelError: a domain's model cannot be loaded, or `encoders` lacks a configured domain.
    """

    def __init__(
        self,
        config: CacheConfig,
        *,
        encoders: DomainEncoders | None = None,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._clock = clock
        self._owned: list = []  # built here, so closed here
        self._encoders = encoders or self._own(DomainEncoders(config))
        missing = sorted(set(config.domains) - set(self._encoders.domains))
        if missing:
            raise ModelError(f"the encoders given have no encoder for domain {', '.join(missing)}")
        self._store = store or self._own(make_store(config, self._encoders.dim))
        self._deciders = {name: make_decider(domain) for name, domain in config.domains.items()}
        self.store_errors = 0  # store calls that failed (a failed lookup is a miss with on_store_error: miss)
        self._failing = False  # in an outage: logged once when it starts, once when it ends
        self._retry_at = 0.0  # in an outage, calls fail at once until then (time.monotonic)
        self._health_lock = threading.Lock()
        self._served: OrderedDict[tuple[str, str, int], tuple[float, str]] = OrderedDict()  # -> (similarity, tier)
        self._feedback_lock = threading.Lock()

    def _own(self, part):
        self._owned.append(part)
        return part

    @classmethod
    def from_config(cls, path: str | Path, clock: Callable[[], float] = time.time) -> "SemanticCache":
        """A cache from a YAML file with a top-level `semantic_cache` block.

        Raises:
            InputError: the file is missing, not YAML, or a field is wrong (the message names it).
            ModelError: a domain's model cannot be loaded.
        """
        return cls(load_config(Path(path)), clock=clock)

    def __enter__(self) -> "SemanticCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def domains(self) -> list[str]:
        return list(self.config.domains)

    def embed(self, prompt: str, domain: str | None) -> np.ndarray:
        """The L2-normalised vector of `prompt` as `domain`'s model sees it (None: the base model, no adapter).

        Raises:
            UnknownDomainError: `domain` is not configured.
            CacheError: the prompt is empty.
        """
        if domain is not None:
            self.domain(domain)
        _require_text(prompt, "prompt")
        return self._encoders.encode(domain, prompt) if domain is not None else self._encoders.encode_base(prompt)

    def check(self, prompt: str, domain: str, tenant: Partition | str | None = None, vector: np.ndarray | None = None) -> Hit | None:
        """The stored answer for a prompt that means the same as `prompt`, or None (a miss).

        Args:
            prompt: the new prompt.
            domain: a configured domain: its model, threshold and namespace are used.
            tenant: the partition to search: a tenant's name (None: the default tenant) or a `Partition`.
            vector: `embed(prompt, domain)` if the caller has it already.

        Returns:
            A `Hit` when the nearest live entry of this tenant reaches the domain's `similarity_threshold` (with
            `verify`: the most similar of its top candidates that passes the guards), else None.

        Raises:
            UnknownDomainError: `domain` is not configured.
            CacheError: the prompt is empty.
            StoreError: the store failed.
        """
        return self.lookup(prompt, domain, tenant, vector).hit

    def lookup(
        self,
        prompt: str,
        domain: str,
        tenant: Partition | str | None = None,
        vector: np.ndarray | None = None,
    ) -> Lookup:
        """`check`, with the nearest entry's similarity and the threshold beside the hit: why a prompt hit or missed.

        Raises:
            UnknownDomainError, CacheError, StoreError: as `check`.
        """
        settings, decider = self.domain(domain), self._deciders[domain]
        _require_text(prompt, "prompt")
        whole = settings.long_prompts == "truncate" or self._encoders.reads_whole(domain, prompt)
        if not whole and settings.long_prompts == "bypass":
            return Lookup(None, None, decider.similarity_threshold, bypass="too_long")
        vector = self._encoders.encode(domain, prompt) if vector is None else vector
        partition, now, threshold = Partition.of(tenant).key(), self._clock(), decider.similarity_threshold
        try:
            found = self._counting_outages(self._store.similar, settings.namespace, partition, vector, now, -1.0, decider.top_k)
        except StoreError:
            if self.config.on_store_error == "error":
                raise
            return Lookup(None, None, threshold)  # fail open: the caller asks the LLM, as on any miss
        if not found:
            return Lookup(None, None, threshold)
        nearest, refused = found[0][1], ()
        nearest_prompt = found[0][0].prompt
        if settings.long_prompts != "truncate":
            found, refused = self._whole_prompts(domain, prompt, whole, found)
        found, second = self._second_opinion(domain, prompt, found) if settings.second_model else (found, None)
        verdict = decider.decide(prompt, [(entry.prompt, similarity) for entry, similarity in found])
        refused += tuple(Refused(found[r.index][0].id, found[r.index][0].prompt, found[r.index][1], r.reason) for r in verdict.refusals)
        hit = None if verdict.chosen is None else self._serve(domain, partition, prompt, *found[verdict.chosen], now)
        judged = _judged(verdict, found)
        return Lookup(hit, nearest, threshold, refused, nearest=nearest_prompt, second_opinion_ms=second, judged=judged)

    def _whole_prompts(self, domain: str, prompt: str, whole: bool, found: list) -> tuple[list, tuple[Refused, ...]]:
        """The candidates decided on every token of both prompts; a prompt past the window (new or stored) is served
        an exact repeat only, so a shared preamble never hides a different question after it."""
        kept, refused = [], []
        for entry, similarity in found:
            exact = clean_text(entry.prompt) == clean_text(prompt)
            if exact or (whole and self._encoders.reads_whole(domain, entry.prompt)):
                kept.append((entry, similarity))
            else:
                refused.append(Refused(entry.id, entry.prompt, similarity, "long_prompt"))
        return kept, tuple(refused)

    def _second_opinion(self, domain: str, prompt: str, found: list) -> tuple[list, float | None]:
        """Candidates within `second_band` of the threshold re-scored with the second model: (1 - w) * cosine + w *
        its cosine; the others keep their cosine. The second model encodes only when one is that near. Returns the
        candidates, most similar first, and the milliseconds the second opinion took (None: not asked)."""
        settings = self.config.domains[domain]
        near = [i for i, (_, similarity) in enumerate(found) if abs(similarity - settings.similarity_threshold) <= settings.second_band]
        if not near:
            return found, None
        started = time.perf_counter()
        vectors = self._encoders.encode_second(domain, [prompt, *(found[i][0].prompt for i in near)])
        rescored, weight = list(found), settings.second_weight
        for vector, i in zip(vectors[1:], near):
            entry, similarity = found[i]
            rescored[i] = (entry, (1 - weight) * similarity + weight * float(vectors[0] @ vector))
        return sorted(rescored, key=lambda candidate: -candidate[1]), (time.perf_counter() - started) * 1000

    def _serve(self, domain: str, partition: str, prompt: str, entry: Entry, similarity: float, now: float) -> Hit:
        """The hit for `entry`, counted in its eviction order and remembered for the feedback that may follow."""
        try:
            self._counting_outages(self._store.record_hit, self.config.domains[domain].namespace, entry, now, similarity)
        except StoreError:
            pass  # the hit is served; only its place in the eviction order was not updated (counted in store_errors)
        tier = "exact" if clean_text(entry.prompt) == clean_text(prompt) else "semantic"
        with self._feedback_lock:
            self._served[(domain, partition, entry.id)] = (similarity, tier)
            self._served.move_to_end((domain, partition, entry.id))
            if len(self._served) > SERVED_REMEMBERED:
                self._served.popitem(last=False)
        return Hit(entry.response, entry.prompt, similarity, now - entry.created, entry.metadata, entry.id, tier)

    def store(
        self,
        prompt: str,
        response: str,
        domain: str,
        tenant: Partition | str | None = None,
        ttl: float | None = None,
        metadata: dict | None = None,
        vector: np.ndarray | None = None,
    ) -> int:
        """Store `response` for `prompt`.

        Args:
            tenant: the partition to store in: a tenant's name (None: the default tenant) or a `Partition`.
            ttl: seconds until the entry expires; default: the domain's `ttl_seconds` (None: never).
            metadata: kept with the entry and returned with its hits.
            vector: `embed(prompt, domain)` if the caller has it already.

        Returns:
            The entry's id.

        Raises:
            UnknownDomainError: `domain` is not configured.
            CacheError: an empty prompt or response, a TTL that is not positive, or a prompt past the encoder's window
                under `long_prompts: bypass`.
            StoreError: the store failed; nothing was stored.
        """
        settings = self.domain(domain)
        _require_text(prompt, "prompt")
        _require_text(response, "response")
        if ttl is not None and ttl <= 0:
            raise CacheError(f"ttl must be > 0 seconds, got {ttl}")
        if settings.long_prompts == "bypass" and not self._encoders.reads_whole(domain, prompt):
            window = self._encoders.window(domain)
            raise CacheError(
                f"prompt: longer than domain {domain}'s encoder reads ({window} tokens) and long_prompts is bypass: not stored"
            )
        vector = self._encoders.encode(domain, prompt) if vector is None else vector
        ttl = ttl if ttl is not None else settings.ttl_seconds
        entry = NewEntry(Partition.of(tenant).key(), vector, prompt, response, self._clock(), ttl, metadata)
        return self._counting_outages(self._store.add, settings.namespace, entry)

    def _counting_outages(self, call, *args, **kwargs):
        """A store call through a circuit breaker: failures counted, an outage logged once when it starts and once when
        it ends; while `store_cooldown_seconds` have not passed since the last failure, calls fail at once, then one
        is let through to probe the store.

        Raises:
            StoreError: the call failed, or the store failed moments ago (`store_cooldown_seconds`).
        """
        with self._health_lock:
            if self._failing and time.monotonic() < self._retry_at:
                self.store_errors += 1
                raise StoreError(f"the {self.config.backend_type} store failed moments ago; trying it again shortly")
        try:
            result = call(*args, **kwargs)
        except StoreError as error:
            with self._health_lock:
                self.store_errors += 1
                starting, self._failing = not self._failing, True
                self._retry_at = time.monotonic() + self.config.store_cooldown_seconds
            if starting:
                log.warning("cache store failing (%s); lookups answer %s until it is back", error, self.config.on_store_error)
            raise
        if self._failing:
            with self._health_lock:
                ending, self._failing = self._failing, False
            if ending:
                log.warning("cache store reachable again")
        return result

    def health(self) -> dict:
        """The store's state, probed now (through the breaker): `ready` is whether the cache can serve from it."""
        try:
            self._counting_outages(self._store.count, next(iter(self.config.domains.values())).namespace, self._clock())
        except StoreError:
            return {"store": self.config.backend_type, "state": "failing", "ready": False}
        return {"store": self.config.backend_type, "state": "ok", "ready": True}

    def invalidate(
        self,
        domain: str,
        tenant: Partition | str | None = None,
        ids: list[int] | None = None,
        prompt: str | None = None,
        min_similarity: float | None = None,
        vector: np.ndarray | None = None,
    ) -> int:
        """Delete entries of `tenant` in `domain`, now: those with these `ids`, those whose stored prompt is at least
        `min_similarity` (default: the domain's threshold) similar to `prompt`, or, given neither, all of them. A
        tenant's invalidation reaches every entry it owns, those the gateway stored under its scopes included; a
        `Partition` with a scope reaches that partition only.

        Returns:
            How many entries were deleted (ids of other tenants are left alone and not counted).

        Raises:
            UnknownDomainError: `domain` is not configured.
            CacheError: both `ids` and `prompt` given.
            StoreError: the store failed.
        """
        settings, partition = self.domain(domain), Partition.of(tenant)
        key, below = partition.key(), partition.is_tenant
        if ids is not None and prompt is not None:
            raise CacheError("invalidate by ids or by prompt, not both")
        if prompt is not None:
            _require_text(prompt, "prompt")
            vector = self._encoders.encode(domain, prompt) if vector is None else vector
            threshold = settings.similarity_threshold if min_similarity is None else min_similarity
            found = self._counting_outages(
                self._store.similar, settings.namespace, key, vector, self._clock(), threshold, INVALIDATE_LIMIT, below=below
            )
            ids = [entry.id for entry, _ in found]
            if not ids:
                return 0
        return self._counting_outages(self._store.delete, settings.namespace, key, ids, below=below)

    def feedback(self, domain: str, id: int, correct: bool, tenant: Partition | str | None = None) -> int | None:
        """What the caller found of a served hit: `correct: False` deletes the entry `id` of `tenant`, so that answer is
        never served again for any prompt (a later miss stores a fresh answer); `correct: True` changes nothing.
        A report is taken only for an entry of the caller's partition, so a wrong hit is taken once (its entry goes);
        with `feedback_log` it is appended there with the similarity the entry was last served at (kept with the
        entry, so a hit served by one replica and reported through another is logged with it). `cachetune
        evaluate-feedback` counts each entry once, by its last report.

        Returns:
            How many entries were deleted (0 or 1), or None when the report was not taken: no such entry in this
            partition (an unknown id, another tenant's, or one already reported wrong).

        Raises:
            UnknownDomainError: `domain` is not configured.
            StoreError: the store failed.
            CacheError: the feedback log cannot be written.
        """
        settings, partition = self.domain(domain), Partition.of(tenant)
        entry = self._counting_outages(self._store.get, settings.namespace, partition.key(), id)
        if entry is None:
            return None
        deleted = 0 if correct else self._counting_outages(self._store.delete, settings.namespace, partition.key(), [id])
        if not correct and deleted == 0:
            return None  # another report deleted it in between
        if self.config.feedback_log:
            self._log_feedback(domain, partition.key(), entry, correct)
        return deleted

    def _log_feedback(self, domain: str, partition: str, entry: Entry, correct: bool) -> None:
        with self._feedback_lock:
            similarity, tier = self._served.get((domain, partition, entry.id), (entry.served_similarity, None))
            report = Feedback(time=self._clock(), domain=domain, id=entry.id, correct=correct, similarity=similarity, tier=tier)
            try:
                with open(self.config.feedback_log, "a", encoding="utf-8") as log_file:
                    log_file.write(to_json_line(report))
            except OSError as error:
                raise CacheError(f"feedback_log {self.config.feedback_log}: {error.strerror}") from None

    def entries(self, domain: str) -> int:
        """Entries stored for `domain` (every tenant's).

        Raises:
            StoreError: the store failed (or failed moments ago).
        """
        return self._counting_outages(self._store.count, self.domain(domain).namespace, self._clock())

    def close(self) -> None:
        """Close what this cache built: the store (the embedded store saves itself here when it has a persist_path)
        and the encoders."""
        for part in self._owned:
            part.close()
        self._owned.clear()

    def domain(self, domain: str) -> DomainConfig:
        """`domain`'s settings.

        Raises:
            UnknownDomainError: `domain` is not configured.
        """
        settings = self.config.domains.get(domain)
        if settings is None:
            raise UnknownDomainError(domain, self.config.domains)
        return settings


def _require_text(value: str, name: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise CacheError(f"{name} is empty")


def make_decider(domain: DomainConfig) -> Decider:
    """The domain's decision: the cosine against its threshold, with `verify` over its top candidates' guards."""
    return Decider(domain.similarity_threshold, domain.verify)


def make_store(config: CacheConfig, dim: int) -> Store:
    """The store `config.backend_type` names, with one namespace per domain."""
    namespaces = {d.namespace: NamespaceSettings(d.max_entries, d.eviction) for d in config.domains.values()}
    if config.backend_type == "milvus":
        from cachetune.cache.milvus import MilvusStore

        return MilvusStore(config.milvus, dim, namespaces)
    if config.backend_type == "redis":
        from cachetune.cache.redis import RedisStore

        return RedisStore(config.redis, dim, namespaces)
    from cachetune.cache.memory import MemoryStore

    return MemoryStore(dim, namespaces, config.memory)
