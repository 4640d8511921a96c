"""The OpenAI-compatible gateway: `POST /v1/chat/completions` with the semantic cache in front, `POST /v1/embeddings`.

Served by `cachetune serve` when the cache config has `semantic_cache.upstream`. An application points its OpenAI
client's `base_url` at it and changes nothing else.

- Domain: the `x-cachetune-domain` header, else `upstream.model_domains[model]`; a request with neither is
  forwarded without the cache. Tenant: the API key's (with `auth`), else the `x-cachetune-tenant` header.
- What is embedded (`upstream.key`): the last user message (default), every user message, or every message. What
  must match exactly (a partition of the store, never text in the embedding): the model, the system messages,
  every generation setting that changes the answer (temperature, top_p, response_format, max_tokens, seed,
  stop, penalties, ...), and, with the last user message embedded, the context key of the earlier turns
  (`upstream.context`: conversation or none; `cachetune.conversation`). The request's other fields are not part of it.
- The same limits as the cache API: an embedded text over `limits.max_prompt_chars` is refused (422, the same
  message as /v1/cache/check); an answer over `limits.max_response_chars` is relayed but not stored.
- Bypassed (forwarded, never looked up or stored): `tools`, `tool_choice`, `functions` or `function_call`;
  `n` > 1; more than `max_messages` messages (default 4 with `context: none`, else 16); message parts that are not text;
  `Cache-Control: no-cache`; a text past the encoder's window with the domain's `long_prompts: bypass`.
  `Cache-Control: no-store` looks up but never stores.
- A miss is forwarded upstream (retries with backoff on connection errors, timeouts, 429 and 5xx); only a
  complete answer (HTTP 200, finish_reason "stop") is stored. `stream: true` is relayed chunk by chunk as it
  arrives and stored after the final event; a hit on a streaming request is replayed as `chat.completion.chunk`
  events. An upstream error is passed through with its status and OpenAI error body; an unreachable or silent
  upstream gives 502 or 504 with an OpenAI error body, within `timeout_seconds` per attempt. Errors are never cached.
- Response headers: `x-cachetune-cache: hit|miss|bypass`, `x-cachetune-similarity` (of the nearest entry, when
  there is one), `x-cachetune-threshold`, `x-cachetune-domain`; on a hit `x-cachetune-id` (the entry served, as
  `ID@SCOPE[/CONTEXT]`: the `id` that `POST /v1/cache/feedback` takes for it) and `x-cachetune-tier` (exact|semantic);
  `x-cachetune-refused` (`ID:REASON,...`) when the domain's
  `verify` stage refused candidates. Prometheus: requests by outcome, upstream latency and upstream errors.
- `/v1/embeddings`: `model` names a domain (its adapter) or `base`; `input` a string or a list of strings.
"""

import asyncio
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass

import httpx
import numpy as np
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from cachetune.cache.auth import Caller, Principal
from cachetune.cache.http import HttpError, within_limit
from cachetune.cache.metrics import Metrics
from cachetune.cache.operator import DecisionLog
from cachetune.cache.semantic_cache import Lookup, SemanticCache
from cachetune.cache.store import Partition
from cachetune.cache_config import UpstreamConfig
from cachetune.conversation import context_key
from cachetune.errors import CachetuneError

# Request fields that change the answer: part of the exact-match scope. Anything else (user, metadata, stream, ...)
# does not, and `n`, tools and functions bypass the cache altogether.
SCOPE_FIELDS = (
    "model", "temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "stop", "presence_penalty",
    "frequency_penalty", "logit_bias", "response_format", "logprobs", "top_logprobs", "reasoning_effort",
)  # fmt: skip
BYPASS_FIELDS = ("tools", "tool_choice", "functions", "function_call")
RETRY_STATUSES = {429, 500, 502, 503, 504}


def message_text(message: dict) -> str | None:
    """A message's text; None when it has parts that are not text (an image) or no text at all."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(part, dict) and part.get("type") == "text" for part in content):
        return "\n".join(str(part.get("text", "")) for part in content)
    return None


def bypass_reason(body: dict, headers, max_messages: int) -> str | None:
    """Why this request must not use the cache, or None."""
    if any(body.get(field) for field in BYPASS_FIELDS):
        return "tools"
    if (body.get("n") or 1) > 1:
        return "n>1"
    messages = body.get("messages") or []
    if len(messages) > max_messages:
        return "long conversation"
    if any(message_text(m) is None for m in messages if isinstance(m, dict)) or not all(isinstance(m, dict) for m in messages):
        return "non-text content"
    if "no-cache" in headers.get("cache-control", "").lower():
        return "no-cache"
    return None


def key_text(messages: list[dict], policy: str) -> str:
    if policy == "all_messages":
        chosen = [m for m in messages if m.get("role") != "system"]
    elif policy == "user_messages":
        chosen = [m for m in messages if m.get("role") == "user"]
    else:
        chosen = [next((m for m in reversed(messages) if m.get("role") == "user"), {"content": ""})]
    return "\n".join(f"{m.get('role', 'user')}: {message_text(m)}" if policy == "all_messages" else message_text(m) for m in chosen)


def earlier_turns(messages: list[dict]) -> list[tuple[str, str]]:
    """The (role, text) turns before the last user message, system and developer messages left out."""
    last = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
    return [(m.get("role", "user"), message_text(m) or "") for m in messages[:last] if m.get("role") not in ("system", "developer")]


def scope_of(body: dict) -> str:
    """The hash of what must match exactly for a stored answer to be reused: model, system messages, settings."""
    systems = [message_text(m) for m in body.get("messages", []) if m.get("role") in ("system", "developer")]
    scope = {field: body.get(field) for field in SCOPE_FIELDS if field in body}
    return hashlib.sha256(json.dumps({"scope": scope, "system": systems}, sort_keys=True, default=str).encode()).hexdigest()[:24]


def replay_chunks(completion: dict) -> list[str]:
    """A stored completion as the server-sent events of a streamed one."""
    base = {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"], "model": completion["model"]}
    choice = completion["choices"][0]
    content = choice["message"].get("content") or ""
    events = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        *({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]} for piece in _pieces(content)),
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": choice.get("finish_reason", "stop")}]},
    ]
    return [f"data: {json.dumps(event)}\n\n" for event in events] + ["data: [DONE]\n\n"]


def _pieces(text: str, size: int = 64) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)] or [""]


class Upstream:
    """The LLM behind the gateway, called with retries and exponential backoff through an httpx transport."""

    def __init__(self, settings: UpstreamConfig, metrics: Metrics, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.url = settings.base_url.rstrip("/") + "/chat/completions"
        self.key = os.environ.get(settings.api_key_env) if settings.api_key_env else None
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(settings.timeout_seconds), transport=transport)

    def headers(self, request: Request, authenticated: bool) -> dict:
        headers = {"content-type": "application/json"}
        if self.key:
            headers["authorization"] = f"Bearer {self.key}"
        elif not authenticated and "authorization" in request.headers:
            headers["authorization"] = request.headers["authorization"]  # a pass-through key, when cachetune has none
        return headers

    async def send(self, body: dict, headers: dict, stream: bool) -> httpx.Response:
        """The upstream's response (its stream open when `stream`), after retries; raises HttpError when it never answers."""
        attempt = 0
        while True:
            try:
                request = self.client.build_request("POST", self.url, json=body, headers=headers)
                response = await self.client.send(request, stream=stream)
            except httpx.TimeoutException:
                failure = HttpError(504, f"the upstream did not answer within {self.settings.timeout_seconds} s", "upstream_timeout")
            except httpx.TransportError as error:
                failure = HttpError(502, f"the upstream cannot be reached ({type(error).__name__})", "upstream_unreachable")
            else:
                if response.status_code not in RETRY_STATUSES or attempt >= self.settings.retries:
                    return response
                await response.aclose()
                failure = None
            if failure is not None and attempt >= self.settings.retries:
                self.metrics.upstream_errors.labels(failure.kind).inc()
                raise failure
            attempt += 1
            await asyncio.sleep(self.settings.backoff_base_seconds * 2 ** (attempt - 1))


@dataclass(frozen=True)
class ChatKey:
    """What a chat completion is looked up and stored by: the embedded text and the partition it must match exactly."""

    text: str
    partition: Partition


async def json_body(request: Request) -> dict:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HttpError(400, "the body is not JSON", "malformed") from None
    if not isinstance(body, dict):
        raise HttpError(400, "the body is not a JSON object", "malformed")
    return body


class Gateway:
    """`POST /v1/chat/completions` with the cache in front, and `POST /v1/embeddings` (see the module's docstring).

    Args:
        cache: the cache; its config's `upstream` block says where the LLM is and how chats are keyed.
        metrics: the service's metrics.
        transport: how the upstream is reached (default: httpx's network transport).
        decisions: where each lookup's decision is kept for the operator's page (none: not kept).
    """

    def __init__(
        self,
        cache: SemanticCache,
        metrics: Metrics,
        transport: httpx.AsyncBaseTransport | None = None,
        decisions: DecisionLog | None = None,
    ) -> None:
        self.cache, self.metrics, self.settings = cache, metrics, cache.config.upstream
        self.upstream = Upstream(self.settings, metrics, transport)
        self.decisions = decisions

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/v1/chat/completions", self.chat_completions, methods=["POST"])
        router.add_api_route("/v1/embeddings", self.embeddings, methods=["POST"])
        return router

    async def aclose(self) -> None:
        await self.upstream.client.aclose()

    async def chat_completions(self, request: Request, principal: Caller):
        body = await json_body(request)
        if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list) or not body["messages"]:
            raise HttpError(400, "a chat completion needs a model (text) and messages (a non-empty list)", "malformed")
        domain = request.headers.get("x-cachetune-domain") or self.settings.model_domains.get(body["model"])
        headers = self.upstream.headers(request, principal is not None)
        reason = "no domain" if domain is None else bypass_reason(body, request.headers, self.settings.message_limit)
        if domain is not None:
            self.cache.domain(domain)  # an unknown domain is a 404, bypassed or not
        if reason is not None:
            self.metrics.requests.labels(domain or "none", "bypass").inc()
            return await self._forward(body, headers, {"x-cachetune-cache": "bypass", "x-cachetune-domain": domain or ""}, None)
        key = self._chat_key(body, request, principal, domain)
        within_limit("prompt", key.text, self.cache.config.limits.max_prompt_chars, domain)  # as /v1/cache/check
        started = time.perf_counter()
        found, vector = await self._lookup(key, domain)
        if found is not None and self.decisions is not None:
            self.decisions.record("gateway", domain, key.partition, key.text, found, (time.perf_counter() - started) * 1000)
        if found is not None and found.bypass is not None:  # a prompt the encoder cannot read whole: neither served nor stored
            self.metrics.requests.labels(domain, "bypass").inc()
            return await self._forward(body, headers, {"x-cachetune-cache": "bypass", "x-cachetune-domain": domain}, None)
        info = self._info(domain, found)
        if found is not None and found.hit is not None:
            return self._hit(body, domain, key, found, info)
        self.metrics.requests.labels(domain, "miss").inc()
        store = None
        if vector is not None and "no-store" not in request.headers.get("cache-control", "").lower():

            async def store(completion: dict) -> None:
                metadata = {"model": body["model"]}
                answer = json.dumps(completion)
                if len(answer) <= self.cache.config.limits.max_response_chars:  # as /v1/cache/store
                    await run_in_threadpool(self.cache.store, key.text, answer, domain, key.partition, None, metadata, vector)

        return await self._forward(body, headers, {**info, "x-cachetune-cache": "miss"}, store)

    def _chat_key(self, body: dict, request: Request, principal: Principal | None, domain: str) -> ChatKey:
        tenant = principal.tenant_for(domain, None) if principal else request.headers.get("x-cachetune-tenant", "")
        text = key_text(body["messages"], self.settings.key)
        earlier = earlier_turns(body["messages"]) if self.settings.key == "last_user_message" else []
        context = context_key(self.settings.context, earlier, text)
        return ChatKey(text, Partition(tenant, scope_of(body), context or None))

    async def _lookup(self, key: ChatKey, domain: str) -> tuple[Lookup | None, np.ndarray | None]:
        """The lookup and the vector it used; (None, None) when the cache cannot answer (forwarded, as a miss)."""

        def lookup() -> tuple[Lookup, np.ndarray]:
            vector = self.cache.embed(key.text, domain)
            return self.cache.lookup(key.text, domain, key.partition, vector), vector

        try:
            return await run_in_threadpool(lookup)
        except CachetuneError:  # an empty key text, a failing store (with on_store_error: error)
            return None, None

    def _info(self, domain: str, found: Lookup | None) -> dict:
        """The x-cachetune-* headers every answer of a looked-up request carries."""
        threshold = found.threshold if found is not None else self.cache.config.domains[domain].similarity_threshold
        info = {"x-cachetune-domain": domain, "x-cachetune-threshold": f"{threshold:.4f}"}
        if found is not None and found.similarity is not None:
            info["x-cachetune-similarity"] = f"{found.similarity:.4f}"
        if found is not None:
            self.metrics.count_lookup(domain, found)
            if found.refused:
                info["x-cachetune-refused"] = ",".join(f"{r.id}:{r.reason}" for r in found.refused)
        return info

    def _hit(self, body: dict, domain: str, key: ChatKey, found: Lookup, info: dict):
        """The stored completion, as JSON or replayed as a stream, with a fresh id and time."""
        self.metrics.requests.labels(domain, "hit").inc()
        self.metrics.hits.labels(domain, found.hit.tier, "gateway").inc()
        headers = {
            **info,
            "x-cachetune-id": key.partition.token(found.hit.id),
            "x-cachetune-tier": found.hit.tier,
            "x-cachetune-cache": "hit",
        }
        completion = {**json.loads(found.hit.response), "id": f"chatcmpl-cachetune-{uuid.uuid4().hex[:24]}", "created": int(time.time())}
        if body.get("stream"):
            return StreamingResponse(iter(replay_chunks(completion)), media_type="text/event-stream", headers=headers)
        return JSONResponse(completion, headers=headers)

    async def _forward(self, body: dict, headers: dict, info: dict, store):
        """Send the request upstream and relay its answer; `store(completion)` keeps a complete one."""
        started = time.perf_counter()
        response = await self.upstream.send(body, headers, stream=bool(body.get("stream")))
        if response.status_code != 200:
            self.metrics.upstream_errors.labels(f"http_{response.status_code}").inc()
            content = await response.aread()
            await response.aclose()
            kind = response.headers.get("content-type", "application/json")
            return StreamingResponse(iter([content]), status_code=response.status_code, media_type=kind, headers=info)
        if body.get("stream"):
            return StreamingResponse(self._relay(response, store, started), media_type="text/event-stream", headers=info)
        try:
            completion = response.json()
        except ValueError:
            self.metrics.upstream_errors.labels("not_json").inc()
            raise HttpError(502, "the upstream answered 200 with a body that is not JSON", "upstream_malformed") from None
        self.metrics.upstream_seconds.observe(time.perf_counter() - started)
        choices = completion.get("choices") or []
        if store and choices and all(choice.get("finish_reason") == "stop" for choice in choices):
            info = {**info, **await self._stored(store, completion)}
        return JSONResponse(completion, headers=info)

    async def _stored(self, store, completion: dict) -> dict:
        """Store a complete answer; a failing store loses nothing but the entry (the answer is still relayed, once):
        returns the header that says so."""
        try:
            await store(completion)
        except CachetuneError:
            self.metrics.store_failures.inc()
            return {"x-cachetune-store": "failed"}
        return {}

    async def _relay(self, response: httpx.Response, store, started: float):
        """The upstream's events as they arrive; a stream that finished with "stop" is stored before [DONE] is relayed
        (a client that closes the stream on reading it cannot cancel that)."""
        content, first, finish = [], None, None
        try:
            async for line in response.aiter_lines():
                data = line.removeprefix("data:").strip() if line.startswith("data:") else None
                if data == "[DONE]" and store and first is not None and finish == "stop":
                    message = {"role": "assistant", "content": "".join(content)}
                    choice = {"index": 0, "message": message, "finish_reason": "stop"}
                    completion = {
                        "id": first.get("id"),
                        "object": "chat.completion",
                        "created": first.get("created"),
                        "model": first.get("model"),
                    }
                    await self._stored(store, {**completion, "choices": [choice]})
                elif data and data != "[DONE]":
                    event = json.loads(data)
                    first = first or event
                    for choice in event.get("choices") or []:
                        content.append((choice.get("delta") or {}).get("content") or "")
                        finish = choice.get("finish_reason") or finish
                yield line + "\n"
        finally:
            await response.aclose()
            self.metrics.upstream_seconds.observe(time.perf_counter() - started)

    async def embeddings(self, request: Request, principal: Caller) -> dict:
        body = await json_body(request)
        model, texts = body.get("model"), body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise HttpError(400, "input: a non-empty string or a list of non-empty strings (token arrays are not taken)", "malformed")
        if len(texts) > 2048:
            raise HttpError(400, f"input: {len(texts)} texts, over the limit of 2048 per request", "malformed")
        if model != "base" and model not in self.cache.config.domains:
            raise HttpError(404, f"model '{model}': not a domain ({', '.join(self.cache.config.domains)}) nor 'base'", "unknown_model")
        if principal and model != "base":
            principal.tenant_for(model, None)  # 403 for a domain the key may not use
        domain = model if model != "base" else None
        vectors = await run_in_threadpool(lambda: [self.cache.embed(text, domain) for text in texts])
        data = [
            {"object": "embedding", "index": i, "embedding": np.asarray(v, dtype=float).round(7).tolist()} for i, v in enumerate(vectors)
        ]
        tokens = sum(len(text.split()) for text in texts)
        return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
