"""The HTTP service: `cachetune serve --config cache.yaml`.

    POST /v1/cache/check       {"prompt", "domain", "tenant"}  -> {"hit": true, "response", "prompt", "similarity", "age_seconds",
                               "metadata", "id", "threshold", "refused"} | {"hit": false, "similarity", "threshold", "refused"}
                               (+ "bypass": "too_long" for a prompt past the encoder's window with long_prompts: bypass)
    POST /v1/cache/store       {"prompt", "response", "domain", "tenant", "ttl", "metadata"} -> {"stored": true, "id"}
    POST /v1/cache/invalidate  {"domain", "tenant", and "ids": [...] | "prompt" (+ "min_similarity") | "all": true} -> {"deleted": n}
                               (every entry of the tenant, those the gateway learned included; ids may be x-cachetune-ids)
    POST /v1/cache/feedback    {"domain", "id", "correct", "tenant"} -> {"deleted": n}: a wrong hit's entry is deleted;
                               `id` is a check's id or a gateway hit's x-cachetune-id; taken for an entry of the
                               caller's tenant only (404 otherwise: unknown, another's, already reported wrong)
    GET  /healthz              -> {"status": "ok", "domains": [...], "store": KIND, "state": "ok"|"failing", "ready": bool}
    GET  /readyz               -> 200 while the store answers, 503 while it does not (for a load balancer)
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

    app = create_app(cache)                                   # cache: a SemanticCache, built from parts or a config
    app = create_app(cache, upstream_transport=transport)     # the gateway's calls upstream through an httpx transport
"""

import gc
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import Field, model_validator
from threadpoolctl import threadpool_limits

from cachetune.cache.auth import Authenticator, Caller, Principal
from cachetune.cache.gateway import Gateway
from cachetune.cache.http import BodyLimit, HttpError, error_response, within_limit
from cachetune.cache.metrics import Metrics
from cachetune.cache.operator import DecisionLog, operator_router
from cachetune.cache.semantic_cache import SemanticCache
from cachetune.cache.store import Partition
from cachetune.errors import CacheError, StoreError, UnknownDomainError
from cachetune.inputs import Strict, dotted, first_error


class CheckBody(Strict):
    prompt: str = Field(min_length=1)
    domain: str
    tenant: str | None = None


class StoreBody(Strict):
    prompt: str = Field(min_length=1)
    response: str = Field(min_length=1)
    domain: str
    tenant: str | None = None
    ttl: float | None = Field(None, gt=0)
    metadata: dict[str, Any] | None = None


class InvalidateBody(Strict):
    domain: str
    tenant: str | None = None
    ids: list[int | str] | None = Field(None, max_length=10_000)  # entry ids, or gateway hits' x-cachetune-id
    prompt: str | None = Field(None, min_length=1)
    min_similarity: float | None = Field(None, ge=-1, le=1)
    all: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> "InvalidateBody":
        if sum((self.ids is not None, self.prompt is not None, self.all)) != 1:
            raise ValueError("give exactly one of ids, prompt or all: true")
        return self


class FeedbackBody(Strict):
    domain: str
    id: int | str  # a check's entry id, or a gateway hit's x-cachetune-id (gateway.entry_token)
    correct: bool
    tenant: str | None = None


log = logging.getLogger("cachetune.service")


class CacheApi:
    """The cache's own routes over one `SemanticCache`: /v1/cache/{check,store,invalidate,feedback}, /healthz, /metrics."""

    def __init__(self, cache: SemanticCache, metrics: Metrics, decisions: DecisionLog) -> None:
        self.cache, self.metrics, self.limits, self.decisions = cache, metrics, cache.config.limits, decisions

    def router(self) -> APIRouter:
        router = APIRouter()
        for name in ("check", "store", "invalidate", "feedback"):
            router.add_api_route(f"/v1/cache/{name}", getattr(self, name), methods=["POST"])
        router.add_api_route("/healthz", self.healthz, methods=["GET"])
        router.add_api_route("/readyz", self.readyz, methods=["GET"])
        router.add_api_route("/metrics", self.prometheus, methods=["GET"])
        return router

    def _tenant(self, principal: Principal | None, domain: str, asked: str | None) -> str | None:
        self.cache.domain(domain)  # an unknown domain is a 404 before anything is said about the key
        return principal.tenant_for(domain, asked) if principal else asked

    async def _call(self, operation: str, domain: str, call, *args):
        """A cache call in the thread pool, timed; its errors as HTTP statuses."""
        started = time.perf_counter()
        try:
            result = await run_in_threadpool(call, *args)
        except UnknownDomainError:
            raise
        except StoreError as error:
            log.warning("%s on domain %s: %s", operation, domain, error)  # the store's address stays in the log
            raise HttpError(
                503, f"the cache's store ({self.cache.config.backend_type}) is unavailable; try again shortly", "store", domain
            ) from None
        except CacheError as error:
            raise HttpError(422, str(error), "bad_request", domain) from None
        self.metrics.latency.labels(domain, operation).observe(time.perf_counter() - started)
        return result

    async def check(self, body: CheckBody, principal: Caller) -> dict:
        tenant = self._tenant(principal, body.domain, body.tenant)
        within_limit("prompt", body.prompt, self.limits.max_prompt_chars, body.domain)
        started = time.perf_counter()
        found = await self._call("check", body.domain, self.cache.lookup, body.prompt, body.domain, tenant)
        elapsed = (time.perf_counter() - started) * 1000
        self.decisions.record("check", body.domain, Partition.of(tenant), body.prompt, found, elapsed)
        self.metrics.count_lookup(body.domain, found)
        refused = [asdict(r) for r in found.refused]
        if found.bypass is not None:
            self.metrics.bypassed.labels(body.domain, found.bypass).inc()
            return {"hit": False, "similarity": None, "threshold": found.threshold, "refused": [], "bypass": found.bypass}
        if found.hit is None:
            self.metrics.misses.labels(body.domain).inc()
            return {"hit": False, "similarity": found.similarity, "threshold": found.threshold, "refused": refused}
        self.metrics.hits.labels(body.domain, found.hit.tier, "check").inc()
        return {"hit": True, **asdict(found.hit), "threshold": found.threshold, "refused": refused}

    async def store(self, body: StoreBody, principal: Caller) -> dict:
        tenant = self._tenant(principal, body.domain, body.tenant)
        within_limit("prompt", body.prompt, self.limits.max_prompt_chars, body.domain)
        within_limit("response", body.response, self.limits.max_response_chars, body.domain)
        arguments = (body.prompt, body.response, body.domain, tenant, body.ttl, body.metadata)
        key = await self._call("store", body.domain, self.cache.store, *arguments)
        self.metrics.stores.labels(body.domain).inc()
        return {"stored": True, "id": key}

    async def invalidate(self, body: InvalidateBody, principal: Caller) -> dict:
        tenant = self._tenant(principal, body.domain, body.tenant)
        if body.prompt is not None:
            within_limit("prompt", body.prompt, self.limits.max_prompt_chars, body.domain)
        if body.ids is None:
            arguments = (body.domain, tenant, None, body.prompt, body.min_similarity)
            deleted = await self._call("invalidate", body.domain, self.cache.invalidate, *arguments)
        else:  # an entry id reaches the tenant's own entries, a gateway id its partition under the tenant
            by_partition: dict = {}
            for partition, id in (Partition.from_id(id, tenant) for id in body.ids):
                by_partition.setdefault(partition, []).append(id)
            deleted = 0
            for partition, ids in by_partition.items():
                deleted += await self._call("invalidate", body.domain, self.cache.invalidate, body.domain, partition, ids)
        self.metrics.invalidated.labels(body.domain).inc(deleted)
        return {"deleted": deleted}

    async def feedback(self, body: FeedbackBody, principal: Caller) -> dict:
        tenant = self._tenant(principal, body.domain, body.tenant)
        partition, id = Partition.from_id(body.id, tenant)
        deleted = await self._call("feedback", body.domain, self.cache.feedback, body.domain, id, body.correct, partition)
        if deleted is None:
            message = (
                f"id: no entry {id} of this tenant in domain {body.domain} to report on (unknown, another tenant's, or already reported)"
            )
            raise HttpError(404, message, "unknown_entry", body.domain)
        self.metrics.feedback.labels(body.domain, "correct" if body.correct else "wrong").inc()
        self.metrics.invalidated.labels(body.domain).inc(deleted)
        return {"deleted": deleted}

    async def healthz(self) -> dict:
        """Liveness, and the store's state beside it (the process answers even while its store is down)."""
        return {"status": "ok", "domains": self.cache.domains, **await run_in_threadpool(self.cache.health)}

    async def readyz(self) -> JSONResponse:
        """Readiness for a load balancer: 200 while the store answers, 503 while it does not."""
        health = await run_in_threadpool(self.cache.health)
        return JSONResponse(health, status_code=200 if health["ready"] else 503)

    async def prometheus(self) -> Response:
        self.metrics.store_errors.set(self.cache.store_errors)
        for domain in self.cache.domains:
            try:
                self.metrics.entries.labels(domain).set(self.cache.entries(domain))
            except StoreError:
                continue  # the store is down: counted in store_errors, and the entries are unknown
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def create_app(cache: SemanticCache, *, upstream_transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """The FastAPI app serving `cache` (and, with an `upstream` block, the OpenAI-compatible gateway).

    Args:
        cache: the cache to serve; the app does not close it (its owner does, e.g. `cachetune serve`).
        upstream_transport: how the gateway reaches its upstream (default: httpx's network transport); tests pass
            `httpx.MockTransport` or `httpx.ASGITransport`.
    """
    metrics, decisions = Metrics(cache.domains), DecisionLog(cache.config.ui)
    gateway = Gateway(cache, metrics, upstream_transport, decisions) if cache.config.upstream is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # The models' millions of objects never die: out of the collector's reach, a full collection no longer
        # stalls every request in flight (16-client p99 125 -> ~50 ms, benchmarks/results/cache_speed.md).
        gc.collect()
        gc.freeze()
        # numpy's BLAS threads spin after each exact search and took the cores from the encoder's own threads: one
        # BLAS thread (a search of a few thousand vectors gains nothing from more) took a new wording's check from
        # 8.0 to 4.0 ms p50 and 16 clients from 314 to 971 checks/s (benchmarks/results/blas_threads.md).
        blas = threadpool_limits(limits=1, user_api="blas")
        yield
        blas.restore_original_limits()
        gc.unfreeze()
        if gateway is not None:
            await gateway.aclose()

    app = FastAPI(title="cachetune semantic cache", version="1", lifespan=lifespan)
    app.state.authenticate = Authenticator(cache.config)

    def refuse(status: int, message: str, kind: str, path: str, domain: str = "") -> JSONResponse:
        metrics.errors.labels(metrics.label(domain), kind).inc()
        return error_response(status, message, kind, path)

    app.add_middleware(BodyLimit, max_bytes=cache.config.limits.max_body_bytes, on_refuse=refuse)
    _add_error_handlers(app, refuse)
    app.include_router(CacheApi(cache, metrics, decisions).router())
    app.include_router(operator_router(cache, decisions))
    if gateway is not None:
        app.include_router(gateway.router())
    return app


def _add_error_handlers(app: FastAPI, refuse) -> None:
    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, error: RequestValidationError) -> JSONResponse:
        named = lambda location: dotted(tuple(part for part in location if part != "body")) or "body"  # noqa: E731
        return refuse(422, first_error(error, named), "malformed", request.url.path)

    @app.exception_handler(HttpError)
    async def refused(request: Request, error: HttpError) -> JSONResponse:
        return refuse(error.status, error.message, error.kind, request.url.path, error.domain)

    @app.exception_handler(UnknownDomainError)
    async def unknown_domain(request: Request, error: UnknownDomainError) -> JSONResponse:
        return refuse(404, str(error), "unknown_domain", request.url.path)

    @app.exception_handler(CacheError)
    async def bad_request(request: Request, error: CacheError) -> JSONResponse:
        return refuse(422, str(error), "malformed", request.url.path)
