"""The HTTP service: `cachetune serve --config cache.yaml`.

    POST /v1/cache/check       {"prompt", "domain", "tenant"}  -> {"hit": true, "response", "prompt", "similarity", "age_seconds",
                               "metadata", "id", "threshold", "refused"} | {"hit": false, "similarity", "threshold", "refused"}
    POST /v1/cache/store       {"prompt", "response", "domain", "tenant", "ttl", "metadata"} -> {"stored": true, "id"}
    POST /v1/cache/invalidate  {"domain", "tenant", and "ids": [...] | "prompt" (+ "min_similarity") | "all": true} -> {"deleted": n}
    POST /v1/cache/feedback    {"domain", "id", "correct", "tenant"} -> {"deleted": n}: a wrong hit's entry is deleted;
                               `id` is a check's id or a gateway hit's x-cachetune-id
    GET  /healthz              -> {"status": "ok", "domains": [...]}
    GET  /metrics              -> Prometheus text: hits, misses, stores, invalidations, refusals by reason, feedback, errors, latency
`refused` lists the candidates a domain's `verify` stage did not serve: {"id", "prompt", "similarity", "reason"},
the reason being `guard:NAME`, `threshold` or `outranked`.
With `semantic_cache.upstream`, the OpenAI-compatible gateway routes too (cachetune.cache.gateway).

JSON bodies use the library's argument names. With `semantic_cache.auth`, every /v1 request carries
`Authorization: Bearer <key>`: the tenant and the domains it may use come from the key (a body `tenant` that
disagrees is refused); 401 without or with a wrong key, 403 for another domain or tenant. Bodies over the size
limit get 413 (without Content-Length 411), prompts over the length limit and malformed bodies 422, an unknown
domain 404, a failing store 503; each with a `detail` that says which field and why, never anything about a key.
The model work runs in a thread pool, so the event loop keeps answering while one request encodes.
"""

import gc
import time
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cachetune.cache.auth import Authenticator, HttpError, Principal
from cachetune.cache.gateway import add_gateway, partition_of
from cachetune.cache.semantic_cache import DEFAULT_TENANT, Lookup, SemanticCache
from cachetune.errors import CacheError, StoreError, UnknownDomainError

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
OPENAI_PATHS = ("/v1/chat/completions", "/v1/embeddings")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckBody(_Body):
    prompt: str = Field(min_length=1)
    domain: str
    tenant: str | None = None


class StoreBody(_Body):
    prompt: str = Field(min_length=1)
    response: str = Field(min_length=1)
    domain: str
    tenant: str | None = None
    ttl: float | None = Field(None, gt=0)
    metadata: dict[str, Any] | None = None


class InvalidateBody(_Body):
    domain: str
    tenant: str | None = None
    ids: list[int] | None = Field(None, max_length=10_000)
    prompt: str | None = Field(None, min_length=1)
    min_similarity: float | None = Field(None, ge=-1, le=1)
    all: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> "InvalidateBody":
        if sum((self.ids is not None, self.prompt is not None, self.all)) != 1:
            raise ValueError("give exactly one of ids, prompt or all: true")
        return self


class FeedbackBody(_Body):
    domain: str
    id: int | str  # a check's entry id, or a gateway hit's x-cachetune-id (gateway.entry_token)
    correct: bool
    tenant: str | None = None


class BodyLimit:
    """ASGI middleware: a POST needs a Content-Length within the limit (411, 413), checked before it is read."""

    def __init__(self, app, max_bytes: int, refuse) -> None:
        self.app, self.max_bytes, self.refuse = app, max_bytes, refuse

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            length = dict(scope["headers"]).get(b"content-length", b"").decode("latin-1")
            response = None
            if not length.isdigit():
                response = self.refuse(411, "send the body with a Content-Length header", kind="no_length")
            elif int(length) > self.max_bytes:
                response = self.refuse(413, f"request body of {length} bytes is over the limit of {self.max_bytes}", kind="too_large")
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.hits = Counter("cachetune_hits", "Cache hits", ["domain"], registry=self.registry)
        self.hits_by_tier = Counter(
            "cachetune_hits_by_tier",
            "Hits served (check and gateway): exact repeats and rewordings",
            ["domain", "tier"],
            registry=self.registry,
        )
        self.misses = Counter("cachetune_misses", "Cache misses", ["domain"], registry=self.registry)
        self.stores = Counter("cachetune_stores", "Entries stored", ["domain"], registry=self.registry)
        self.invalidated = Counter("cachetune_invalidated", "Entries deleted by invalidation", ["domain"], registry=self.registry)
        self.refusals = Counter(
            "cachetune_refusals", "Candidates the verify stage refused, by reason", ["domain", "reason"], registry=self.registry
        )
        self.feedback = Counter(
            "cachetune_feedback",
            "Served hits reported correct or wrong: their precision in production",
            ["domain", "verdict"],
            registry=self.registry,
        )
        self.errors = Counter("cachetune_errors", "Requests refused or failed", ["domain", "kind"], registry=self.registry)
        self.latency = Histogram(
            "cachetune_request_seconds", "Time to answer", ["domain", "operation"], buckets=LATENCY_BUCKETS, registry=self.registry
        )
        self.entries = Gauge("cachetune_entries", "Entries stored now", ["domain"], registry=self.registry)
        self.store_errors = Gauge(
            "cachetune_store_errors",
            "Store calls that failed since start (failed lookups answered as misses included)",
            registry=self.registry,
        )

    def count_refusals(self, domain: str, found: Lookup) -> None:
        for refusal in found.refused:
            if refusal.reason != "outranked":  # a reason label: guard:NAME or threshold (a bounded set)
                self.refusals.labels(domain, refusal.reason).inc()


def create_app(cache: SemanticCache) -> FastAPI:
    """The FastAPI app serving `cache` (and, with an `upstream` block, the OpenAI-compatible gateway)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # The models' millions of objects never die: out of the collector's reach, a full collection no longer
        # stalls every request in flight (16-client p99 125 -> ~50 ms, benchmarks/results/cache_speed.md).
        gc.collect()
        gc.freeze()
        yield
        gc.unfreeze()
        cache.close()  # makes the embedded store's snapshot, stops the encoders

    app = FastAPI(title="cachetune semantic cache", version="1", lifespan=lifespan)
    metrics = Metrics()
    limits = cache.config.limits
    authenticate = Authenticator(cache.config)
    Caller = Annotated[Principal | None, Depends(authenticate)]

    def label(domain: str) -> str:
        # Only configured domains become label values: a caller must not be able to grow the metrics without bound.
        return domain if domain in cache.config.domains else "none"

    def refuse(status: int, message: str, domain: str = "", kind: str = "bad_request", path: str = "") -> JSONResponse:
        metrics.errors.labels(label(domain), kind).inc()
        if path in OPENAI_PATHS:  # the gateway answers in the OpenAI error format its clients parse
            error = {"message": message, "type": "invalid_request_error" if status < 500 else "upstream_error", "param": None, "code": kind}
            return JSONResponse(status_code=status, content={"error": error})
        return JSONResponse(status_code=status, content={"detail": message})

    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes, refuse=refuse)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, error: RequestValidationError) -> JSONResponse:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"] if part != "body") or "body"
        return refuse(422, f"{field}: {problem['msg']}", kind="malformed", path=request.url.path)

    @app.exception_handler(HttpError)
    async def refused(request: Request, error: HttpError) -> JSONResponse:
        return refuse(error.status, error.message, error.domain, error.kind, request.url.path)

    def tenant_of(principal: Principal | None, domain: str, asked: str | None) -> str | None:
        if domain not in cache.config.domains:
            raise HttpError(404, f"unknown domain '{domain}'; configured: {', '.join(cache.config.domains)}", "unknown_domain")
        return principal.tenant_for(domain, asked) if principal else asked

    def check_lengths(body: CheckBody | StoreBody) -> None:
        if len(body.prompt) > limits.max_prompt_chars:
            raise HttpError(
                422, f"prompt: {len(body.prompt)} characters, over the limit of {limits.max_prompt_chars}", "too_long", body.domain
            )
        if isinstance(body, StoreBody) and len(body.response) > limits.max_response_chars:
            message = f"response: {len(body.response)} characters, over the limit of {limits.max_response_chars}"
            raise HttpError(422, message, "too_long", body.domain)

    async def run(operation: str, domain: str, call, *args):
        """A cache call in the thread pool, timed; its errors as HTTP statuses."""
        started = time.perf_counter()
        try:
            result = await run_in_threadpool(call, *args)
        except UnknownDomainError as error:
            raise HttpError(404, str(error), "unknown_domain") from None
        except StoreError as error:
            raise HttpError(503, str(error), "store", domain) from None
        except CacheError as error:
            raise HttpError(422, str(error), "bad_request", domain) from None
        metrics.latency.labels(domain, operation).observe(time.perf_counter() - started)
        return result

    @app.post("/v1/cache/check")
    async def check(body: CheckBody, principal: Caller):
        tenant = tenant_of(principal, body.domain, body.tenant)
        check_lengths(body)
        found = await run("check", body.domain, cache.lookup, body.prompt, body.domain, tenant)
        metrics.count_refusals(body.domain, found)
        refused = [asdict(r) for r in found.refused]
        if found.hit is None:
            metrics.misses.labels(body.domain).inc()
            return {"hit": False, "similarity": found.similarity, "threshold": found.threshold, "refused": refused}
        metrics.hits.labels(body.domain).inc()
        metrics.hits_by_tier.labels(body.domain, found.hit.tier).inc()
        return {"hit": True, **asdict(found.hit), "threshold": found.threshold, "refused": refused}

    @app.post("/v1/cache/store")
    async def store(body: StoreBody, principal: Caller):
        tenant = tenant_of(principal, body.domain, body.tenant)
        check_lengths(body)
        key = await run("store", body.domain, cache.store, body.prompt, body.response, body.domain, tenant, body.ttl, body.metadata)
        metrics.stores.labels(body.domain).inc()
        return {"stored": True, "id": key}

    @app.post("/v1/cache/invalidate")
    async def invalidate(body: InvalidateBody, principal: Caller):
        tenant = tenant_of(principal, body.domain, body.tenant)
        if body.prompt is not None and len(body.prompt) > limits.max_prompt_chars:
            raise HttpError(422, f"prompt: over the limit of {limits.max_prompt_chars} characters", "too_long", body.domain)
        deleted = await run("invalidate", body.domain, cache.invalidate, body.domain, tenant, body.ids, body.prompt, body.min_similarity)
        metrics.invalidated.labels(body.domain).inc(deleted)
        return {"deleted": deleted}

    @app.post("/v1/cache/feedback")
    async def feedback(body: FeedbackBody, principal: Caller):
        tenant, id = tenant_of(principal, body.domain, body.tenant), body.id
        if isinstance(id, str) and id.isdigit():
            id = int(id)
        elif isinstance(id, str):  # a gateway hit: its entry lives in a partition of the tenant (scope, context)
            tenant, id = partition_of(id, tenant or DEFAULT_TENANT)
        deleted = await run("feedback", body.domain, cache.feedback, body.domain, id, body.correct, tenant)
        metrics.feedback.labels(body.domain, "correct" if body.correct else "wrong").inc()
        metrics.invalidated.labels(body.domain).inc(deleted)
        return {"deleted": deleted}

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "domains": cache.domains}

    @app.get("/metrics")
    async def prometheus():
        metrics.store_errors.set(cache.store_errors)
        for domain in cache.domains:
            try:
                metrics.entries.labels(domain).set(cache.entries(domain))
            except StoreError:
                continue  # the store is down: counted in store_errors, and the entries are unknown
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    if cache.config.upstream is not None:
        add_gateway(app, cache, authenticate, metrics)
    return app
