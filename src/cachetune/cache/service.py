"""The HTTP service: `cachetune serve --config cache.yaml`.

    POST /v1/cache/check  {"prompt", "domain", "tenant"}            -> {"hit": true, "response", "prompt", "similarity", "age_seconds", "metadata"} | {"hit": false}
    POST /v1/cache/store  {"prompt", "response", "domain", "tenant", "ttl", "metadata"} -> {"stored": true, "id"}
    GET  /healthz                                                    -> {"status": "ok", "domains": [...]}
    GET  /metrics                                                    -> Prometheus text: hits, misses, errors, latency per domain

JSON bodies use the library's argument names. Bodies over the size limit get 413, prompts over the
length limit and malformed bodies 422, an unknown domain 404, each with a message that says which.
The model work runs in a thread pool, so the event loop keeps answering while one request encodes.
"""

import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from cachetune.cache.semantic_cache import SemanticCache
from cachetune.errors import CacheError, StoreError, UnknownDomainError

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class CheckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1)
    domain: str
    tenant: str | None = None


class StoreBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1)
    response: str = Field(min_length=1)
    domain: str
    tenant: str | None = None
    ttl: float | None = Field(None, gt=0)
    metadata: dict[str, Any] | None = None


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.hits = Counter("cachetune_hits", "Cache hits", ["domain"], registry=self.registry)
        self.misses = Counter("cachetune_misses", "Cache misses", ["domain"], registry=self.registry)
        self.stores = Counter("cachetune_stores", "Entries stored", ["domain"], registry=self.registry)
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


def create_app(cache: SemanticCache) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        cache.close()  # persists the embedded store when it has a persist_path

    app = FastAPI(title="cachetune semantic cache", version="1", lifespan=lifespan)
    metrics = Metrics()
    limits = cache.config.limits

    def refuse(status: int, message: str, domain: str = "", kind: str = "bad_request") -> JSONResponse:
        # Only configured domains become label values: a caller must not be able to grow the metrics without bound.
        metrics.errors.labels(domain if domain in cache.config.domains else "none", kind).inc()
        return JSONResponse(status_code=status, content={"detail": message})

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        if request.method == "POST":
            length = request.headers.get("content-length")
            if length is None or not length.isdigit():
                return refuse(411, "send the body with a Content-Length header", kind="no_length")
            if int(length) > limits.max_body_bytes:
                return refuse(413, f"request body of {length} bytes is over the limit of {limits.max_body_bytes}", kind="too_large")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, error: RequestValidationError) -> JSONResponse:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"] if part != "body") or "body"
        return refuse(422, f"{field}: {problem['msg']}", kind="malformed")

    def check_limits(body: CheckBody | StoreBody) -> JSONResponse | None:
        if len(body.prompt) > limits.max_prompt_chars:
            return refuse(
                422, f"prompt: {len(body.prompt)} characters, over the limit of {limits.max_prompt_chars}", body.domain, "too_long"
            )
        if isinstance(body, StoreBody) and len(body.response) > limits.max_response_chars:
            return refuse(
                422, f"response: {len(body.response)} characters, over the limit of {limits.max_response_chars}", body.domain, "too_long"
            )
        return None

    @app.post("/v1/cache/check")
    async def check(body: CheckBody):
        if (refusal := check_limits(body)) is not None:
            return refusal
        started = time.perf_counter()
        try:
            hit = await run_in_threadpool(cache.check, body.prompt, body.domain, body.tenant)
        except UnknownDomainError as error:
            return refuse(404, str(error), kind="unknown_domain")
        except StoreError as error:
            return refuse(503, str(error), body.domain, "store")
        except CacheError as error:
            return refuse(422, str(error), body.domain)
        metrics.latency.labels(body.domain, "check").observe(time.perf_counter() - started)
        if hit is None:
            metrics.misses.labels(body.domain).inc()
            return {"hit": False}
        metrics.hits.labels(body.domain).inc()
        return {
            "hit": True,
            "response": hit.response,
            "prompt": hit.prompt,
            "similarity": hit.similarity,
            "age_seconds": hit.age_seconds,
            "metadata": hit.metadata,
        }

    @app.post("/v1/cache/store")
    async def store(body: StoreBody):
        if (refusal := check_limits(body)) is not None:
            return refusal
        started = time.perf_counter()
        try:
            key = await run_in_threadpool(cache.store, body.prompt, body.response, body.domain, body.tenant, body.ttl, body.metadata)
        except UnknownDomainError as error:
            return refuse(404, str(error), kind="unknown_domain")
        except StoreError as error:
            return refuse(503, str(error), body.domain, "store")
        except CacheError as error:
            return refuse(422, str(error), body.domain)
        metrics.latency.labels(body.domain, "store").observe(time.perf_counter() - started)
        metrics.stores.labels(body.domain).inc()
        return {"stored": True, "id": key}

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
                pass  # the store is down: counted above, and entries are unknown
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
