"""The cache's YAML configuration, validated by pydantic: a wrong field names itself and its file.

```yaml
semantic_cache:
  backend_type: memory            # memory | milvus | redis
  on_store_error: miss            # miss: a failed lookup answers as a miss (fail open) | error: it fails
  store_cooldown_seconds: 2       # after a store failure, calls fail at once this long, then one probes
  base_model: sentence-transformers/all-MiniLM-L6-v2   # optional; the default packaged copy
  adapter_mode: merged            # merged: a copy per adapter domain | switched: one base, adapters switched per request
  exact_tier_entries: 10000       # a prompt seen lately skips the encoder (its vector kept); 0: every prompt encoded
  domains:
    coding:
      namespace: coding
      embedding_model_path: models/programming-cache-lora   # adapter or full model; absent = the base model
      similarity_threshold: 0.92
      ttl_seconds: 7200
      max_entries: 100000
      eviction: lru                # lru | fifo | lfu
      verify:                      # optional: a second look at the top candidates (cachetune.decision)
        guards: [numbers, negation]   # refuse a candidate whose numbers or negation disagree with the prompt
        top_k: 5                   # candidates looked at: a look-alike ranked first no longer hides a true repeat
      long_prompts: exact          # past the encoder's window: exact repeats only | bypass | truncate
```
Relative model paths and store paths are resolved against the config file's folder.
"""

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from cachetune.conversation import ContextMode
from cachetune.decision import VerifySettings
from cachetune.inputs import Strict, load_yaml


class DomainConfig(Strict):
    namespace: str = ""  # default: the domain's name (filled in when the config is validated)
    embedding_model_path: str | None = None
    similarity_threshold: float = Field(0.9, gt=-1.0, le=1.0)
    ttl_seconds: float | None = Field(None, gt=0)
    max_entries: int = Field(100_000, ge=1)
    eviction: Literal["lru", "fifo", "lfu"] = "lru"
    # torch, or the model exported to ONNX on first start (fp32: the same vectors; int8: smaller, mean cosine ~0.99)
    encoder: Literal["torch", "onnx", "onnx-int8"] = "onnx"
    verify: VerifySettings | None = None  # guards over the top candidates; absent: the nearest entry's cosine decides
    # A prompt longer than the encoder's window (programming adapter 64 tokens, medical 128, base 256) is only part
    # read. exact: it is served, and its stored answer serves, only an exact repeat (clean_text); bypass: it is
    # neither looked up nor stored; truncate: decided on its first tokens like any prompt (a shared preamble then
    # hides the question after it: benchmarks/results/long_prompts.md)
    long_prompts: Literal["exact", "bypass", "truncate"] = "exact"
    report: str | None = None  # the evaluation report (report.html) that chose this threshold: linked from /ui
    # A second opinion near the threshold: a candidate whose cosine is within second_band of the threshold is
    # re-scored by (1 - second_weight) * cosine + second_weight * the second model's cosine (any model spec, e.g.
    # all-mpnet-base-v2); elsewhere the domain's model decides alone. benchmarks/results/second_opinion.md
    second_model: str | None = None
    second_band: float = Field(0.05, ge=0, le=1)
    second_weight: float = Field(0.5, ge=0, le=1)


class HnswConfig(Strict):
    """usearch HNSW parameters (benchmarks/results/cache_speed.md: recall@1 and latency at 100K and 1M entries)."""

    # 48 / 256 / 256: recall@1 0.990 at 1M realistic entries, p99 7 ms; 32 / 128 found 0.984 at best (ef 512, p99 15 ms)
    connectivity: int = Field(48, ge=2)  # links per node (M)
    expansion_add: int = Field(256, ge=1)  # candidates while inserting (ef_construction)
    expansion_search: int = Field(256, ge=1)  # candidates while searching (ef)


class MemoryStoreConfig(Strict):
    index: Literal["exact", "ann", "auto"] = "auto"  # auto: exact search up to `ann_above` entries, then HNSW
    ann_above: int = Field(20_000, ge=1)
    hnsw: HnswConfig = HnswConfig()
    persist_path: str | None = None  # a snapshot and an append-only log beside it, loaded on start
    fsync: Literal["always", "everysec", "no"] = "everysec"  # when the log reaches the disk
    compact_above_bytes: int = Field(64_000_000, ge=1)  # rewrite the snapshot when the log grows past this


class MilvusStoreConfig(Strict):
    uri: str = "milvus.db"  # a local file runs Milvus Lite in process; http://host:19530 a Milvus server or cluster
    token: str | None = None
    collection_prefix: str = "cachetune_"
    # What a lookup sees (benchmarks/results/cache_speed.md: a Milvus 2.3 server's lookup latency at each). Strong:
    # every store and deletion made before it, by any replica (each read waits for Milvus' next time tick, ~0.2-0.3 s
    # a lookup on a 2.3 server); Session, Bounded: faster, but a deletion (a wrong hit reported, an invalidation) may
    # be missed for a moment and its answer served again, and on a 2.3 server even this process's own
    consistency_level: Literal["Strong", "Session", "Bounded", "Eventually"] = "Strong"


class RedisIndexConfig(Strict):
    algorithm: Literal["HNSW", "FLAT"] = "HNSW"
    m: int = Field(16, ge=2)  # HNSW: links per node
    ef_construction: int = Field(200, ge=1)
    ef_runtime: int = Field(256, ge=1)  # candidates searched per query: 64 found the nearest of 100K for 0.987 of lookups, 256 for 0.997


class RedisStoreConfig(Strict):
    url: str = "redis://127.0.0.1:6379/0"  # rediss:// for TLS
    username_env: str | None = None  # environment variables that hold the credentials (never the config file)
    password_env: str | None = None
    key_prefix: str = "cachetune:"
    index: RedisIndexConfig = RedisIndexConfig()
    timeout_seconds: float = Field(1.0, gt=0)  # connect and each command
    retries: int = Field(3, ge=0)  # on connection errors and timeouts, with exponential backoff
    backoff_base_seconds: float = Field(0.05, gt=0)
    backoff_cap_seconds: float = Field(1.0, gt=0)


class BatchingConfig(Strict):
    max_batch: int = Field(32, ge=1)  # texts per forward pass
    max_wait_ms: float = Field(0.0, ge=0)  # 0: no wait; a batch is what queued while the last pass ran


class ApiKey(Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # of the key: the key itself is never written down
    tenant: str
    domains: list[str] = Field(min_length=1)  # the domains it may use; ["*"]: all
    roles: list[Literal["admin"]] = []  # admin: the operator's page (/ui), for its tenant's decisions


class UiConfig(Strict):
    """The operator's page, /ui (cachetune.cache.operator)."""

    decisions: int = Field(1_000, ge=10, le=100_000)  # recent decisions kept per process (each under ~1.5 KB)
    keep_prompts: bool = True  # false: a decision shows a prompt's sha256 (12 hex digits), never its text
    window_minutes: int = Field(15, ge=1, le=120)  # how far back the page's counts and charts go


class AuthConfig(Strict):
    keys: list[ApiKey] = []
    keys_file: str | None = None  # YAML or JSON list of keys in the same form, kept apart from this file


class UpstreamConfig(Strict):
    base_url: str  # the LLM's OpenAI-compatible API, e.g. https://api.openai.com/v1
    api_key_env: str | None = None  # environment variable holding the upstream's key
    timeout_seconds: float = Field(60.0, gt=0)
    retries: int = Field(2, ge=0)  # connection errors, timeouts, 429 and 5xx, exponential backoff
    backoff_base_seconds: float = Field(0.5, gt=0)
    model_domains: dict[str, str] = {}  # model name -> domain, when the request names no x-cachetune-domain
    key: Literal["last_user_message", "user_messages", "all_messages"] = "last_user_message"  # the text that is embedded
    # What the earlier turns of a chat add to its last message (cachetune.conversation; benchmarks/results/
    # conversations.md): conversation (every message after the first is served only after the same turns, small
    # talk aside), none (earlier turns ignored: a follow-up such as "cancel it" is served whatever conversation it
    # ends; on the set written apart from the rules, every must-not-share pair was served).
    context: ContextMode = "conversation"
    max_messages: int | None = Field(None, ge=1)  # longer conversations bypass the cache; default 4 with context none, else 16

    @property
    def message_limit(self) -> int:
        return self.max_messages or (4 if self.context == "none" else 16)


class LimitsConfig(Strict):
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_prompt_chars: int = Field(20_000, ge=1)
    max_response_chars: int = Field(500_000, ge=1)


class CacheConfig(Strict):
    backend_type: Literal["memory", "milvus", "redis"] = "memory"
    on_store_error: Literal["miss", "error"] = "miss"
    # After a store call fails, calls fail at once for this long (a lookup is then a miss within microseconds, not
    # after the store's retries), then one is let through to probe whether the store is back; 0: every call tries.
    store_cooldown_seconds: float = Field(2.0, ge=0)
    base_model: str | None = None
    adapter_mode: Literal["merged", "switched"] = "merged"
    onnx_cache: str = "~/.cache/cachetune/onnx"  # ONNX exports of the domains' models, keyed by their weights' sha256
    batching: BatchingConfig = BatchingConfig()
    exact_tier_entries: int = Field(10_000, ge=0)  # vectors of recent prompts kept per process (encoders.py); 0: off
    domains: dict[str, DomainConfig]
    memory: MemoryStoreConfig = MemoryStoreConfig()
    milvus: MilvusStoreConfig = MilvusStoreConfig()
    redis: RedisStoreConfig = RedisStoreConfig()
    limits: LimitsConfig = LimitsConfig()
    auth: AuthConfig | None = None  # absent: no authentication, and `cachetune serve` listens on loopback only
    ui: UiConfig = UiConfig()
    upstream: UpstreamConfig | None = None  # present: the OpenAI-compatible gateway is served too
    # JSONL of every feedback (records.Feedback: the served hit's similarity, right or wrong), appended as it comes:
    # `cachetune evaluate-feedback` turns it into the served hits' measured precision and a threshold recommendation
    feedback_log: str | None = None

    @model_validator(mode="after")
    def _keys_name_configured_domains(self) -> "CacheConfig":
        for part, names in (("auth.keys", [d for key in (self.auth.keys if self.auth else []) for d in key.domains]),
                            ("upstream.model_domains", list(self.upstream.model_domains.values()) if self.upstream else [])):  # fmt: skip
            unknown = sorted(set(names) - set(self.domains) - {"*"})
            if unknown:
                raise ValueError(f"{part}: unknown domain {', '.join(unknown)}; configured: {', '.join(self.domains)}")
        return self

    @model_validator(mode="after")
    def _namespaces_are_distinct(self) -> "CacheConfig":
        if not self.domains:
            raise ValueError("domains: at least one domain is needed")
        seen: dict[str, str] = {}
        for name, domain in self.domains.items():
            domain.namespace = namespace = domain.namespace or name
            if namespace in seen:
                raise ValueError(f"domains: {seen[namespace]} and {name} share namespace '{namespace}'")
            seen[namespace] = name
        return self


def load_config(path: Path) -> CacheConfig:
    """The `semantic_cache` block of a YAML file, its relative paths made relative to the file.

    Raises:
        InputError: the file is missing, not YAML, or a field is wrong (the message names it).
    """
    return _resolve_paths(load_yaml(Path(path), CacheConfig, "semantic_cache"), Path(path).parent)


def _resolve_paths(config: CacheConfig, folder: Path) -> CacheConfig:
    """Paths in the file are relative to the file; a model name that is not a path stays a name."""

    def resolve(value: str | None) -> str | None:
        if value is None or Path(value).is_absolute() or not (folder / value).exists():
            return value
        return str(folder / value)

    paths = ("embedding_model_path", "report", "second_model")
    domains = {name: d.model_copy(update={key: resolve(getattr(d, key)) for key in paths}) for name, d in config.domains.items()}
    memory = config.memory
    if memory.persist_path and not Path(memory.persist_path).is_absolute():
        memory = memory.model_copy(update={"persist_path": str(folder / memory.persist_path)})
    milvus = config.milvus
    if "://" not in milvus.uri and not Path(milvus.uri).is_absolute():
        milvus = milvus.model_copy(update={"uri": str(folder / milvus.uri)})
    feedback_log = config.feedback_log
    if feedback_log and not Path(feedback_log).is_absolute():
        feedback_log = str(folder / feedback_log)
    auth = config.auth
    if auth and auth.keys_file and not Path(auth.keys_file).is_absolute():
        auth = auth.model_copy(update={"keys_file": str(folder / auth.keys_file)})
    update = {
        "domains": domains, "memory": memory, "milvus": milvus, "auth": auth, "base_model": resolve(config.base_model),
        "feedback_log": feedback_log,
    }  # fmt: skip
    return config.model_copy(update=update)
