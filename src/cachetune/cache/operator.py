"""The operator's page: what the cache decided lately and why, a "wrong hit" button, and what another threshold
would have done to the same traffic.

    GET  /ui                              the page (static HTML, JavaScript and CSS of this package; no data in it)
    GET  /ui/api/summary                  per domain: threshold, counts over the last `ui.window_minutes` (checks, hit
                                          ratio, hits by tier, refusals by reason, p50/p99 latency, entries) and a
                                          series per 10 s for the charts
    GET  /ui/api/decisions?domain=&limit= the recent decisions, newest first
    POST /ui/api/decisions/{seq}/wrong    the feedback path for a served decision: its entry deleted, the feedback log
                                          written, the decision marked
    GET  /ui/api/report/{domain}          the evaluation report (report.html) the domain's config names

Every /ui/api call takes the API's bearer key and needs one with the `admin` role (403 otherwise); without an auth
block (loopback only) the page is open. A key sees the decisions of its own tenant only; the counts are the domain's.
Decisions live in a ring buffer per process (`ui.decisions`, each under ~1.5 KB: prompts are cut to 500
characters, or kept as a hash with `ui.keep_prompts: false`), so the page shows what this replica decided.
"""

import hashlib
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from importlib import resources

import numpy as np
from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from cachetune.cache.auth import Caller, Principal
from cachetune.cache.http import HttpError
from cachetune.cache.semantic_cache import Lookup, SemanticCache
from cachetune.cache.store import Partition
from cachetune.cache_config import UiConfig
from cachetune.errors import StoreError

BUCKET_SECONDS = 10
SHOWN_CHARS = 500  # of a prompt and of its nearest stored prompt: what bounds a decision's size


@dataclass
class Decision:
    """One lookup as the page shows it."""

    seq: int
    time: float
    path: str  # check | gateway
    domain: str
    tenant: str
    prompt: str
    nearest: str | None  # the stored prompt served, or the nearest one refused
    similarity: float | None  # the nearest entry's
    candidate_similarity: float | None  # of the candidate the threshold judged: what another threshold would decide on
    threshold: float
    outcome: str  # hit | miss | bypass
    reason: str  # hit: exact | semantic; miss: threshold, guard:NAME, long_prompt, empty; bypass: too_long
    milliseconds: float
    entry_id: int | None = None  # of a hit
    marked_wrong: bool = False
    partition: Partition | None = field(default=None, repr=False)  # of a hit: where the feedback goes


class DecisionLog:
    """The recent decisions (a ring buffer) and per-domain counts by 10-second bucket, of this process."""

    def __init__(self, settings: UiConfig, clock=time.time) -> None:
        self.settings, self.clock = settings, clock
        self._decisions: deque[Decision] = deque(maxlen=settings.decisions)
        self._buckets: dict[tuple[str, int], Counter] = {}
        self._latencies: dict[tuple[str, int], list[float]] = {}
        self._lock = threading.Lock()
        self._seq = 0

    def _shown(self, text: str | None) -> str | None:
        if text is None or self.settings.keep_prompts:
            return None if text is None else text[:SHOWN_CHARS]
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:12]

    def record(self, path: str, domain: str, partition: Partition, prompt: str, found: Lookup, milliseconds: float) -> None:
        """Keep one lookup's decision and count it."""
        outcome, reason, nearest, candidate = _outcome(found)
        now = self.clock()
        with self._lock:
            self._seq += 1
            decision = Decision(
                self._seq, now, path, domain, partition.tenant, self._shown(prompt), self._shown(nearest), found.similarity,
                candidate, found.threshold, outcome, reason, round(milliseconds, 3),
                found.hit.id if found.hit else None, partition=partition if found.hit else None,
            )  # fmt: skip
            self._decisions.appendleft(decision)
            counts, latencies = self._bucket(domain, int(now // BUCKET_SECONDS))
            counts["checks"] += 1
            counts[f"{outcome}:{reason}"] += 1
            counts.update(f"refused:{r.reason}" for r in found.refused if r.reason != "outranked")
            latencies.append(milliseconds)

    def _bucket(self, domain: str, number: int) -> tuple[Counter, list[float]]:
        """The domain's counts and latencies of bucket `number`; buckets past the window are dropped when a new one
        starts (not on every record: this runs on each check)."""
        key = (domain, number)
        if key not in self._buckets:
            oldest = number - self.settings.window_minutes * 60 // BUCKET_SECONDS
            for old in [b for b in self._buckets if b[1] < oldest]:
                del self._buckets[old], self._latencies[old]
            self._buckets[key], self._latencies[key] = Counter(), []
        return self._buckets[key], self._latencies[key]

    def decisions(self, tenant: str | None, domain: str | None, limit: int) -> list[Decision]:
        """Newest first; with `tenant`, only that tenant's."""
        with self._lock:
            chosen = [d for d in self._decisions if (tenant is None or d.tenant == tenant) and (domain is None or d.domain == domain)]
        return chosen[:limit]

    def decision(self, seq: int, tenant: str | None) -> Decision | None:
        with self._lock:
            return next((d for d in self._decisions if d.seq == seq and (tenant is None or d.tenant == tenant)), None)

    def summary(self, domain: str) -> dict:
        """The domain's counts over the window, and a series per bucket for the charts."""
        now = int(self.clock() // BUCKET_SECONDS)
        first = now - self.settings.window_minutes * 60 // BUCKET_SECONDS + 1
        with self._lock:
            counts = [self._buckets.get((domain, b), Counter()) for b in range(first, now + 1)]
            latencies = [ms for b in range(first, now + 1) for ms in self._latencies.get((domain, b), [])]
        total = sum(counts, Counter())
        hits = {tier: total[f"hit:{tier}"] for tier in ("exact", "semantic")}
        series = [
            {"time": (first + i) * BUCKET_SECONDS, "checks": c["checks"], "hits": c["hit:exact"] + c["hit:semantic"]}
            for i, c in enumerate(counts)
        ]
        return {
            "checks": total["checks"],
            "hit_ratio": sum(hits.values()) / total["checks"] if total["checks"] else None,
            "hits": hits,
            "bypassed": sum(n for key, n in total.items() if key.startswith("bypass:")),
            "refusals": {key.removeprefix("refused:"): n for key, n in total.items() if key.startswith("refused:")},
            "latency_ms": {"p50": _percentile(latencies, 50), "p99": _percentile(latencies, 99)},
            "series": series,
        }


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def _outcome(found: Lookup) -> tuple[str, str, str | None, float | None]:
    """(outcome, reason, the stored prompt served or nearest refused, the similarity the threshold judged)."""
    if found.bypass is not None:
        return "bypass", found.bypass, None, None
    if found.hit is not None:
        return "hit", found.hit.tier, found.hit.prompt, found.hit.similarity
    if found.similarity is None:
        return "miss", "empty", None, None  # nothing stored in the partition
    first = found.refused[0] if found.refused else None
    if first is None or first.reason == "threshold":  # the best candidate fell short of the threshold
        return "miss", "threshold", first.prompt if first else found.nearest, found.judged
    return "miss", first.reason, first.prompt, found.judged


def require_admin(principal: Caller) -> Principal | None:
    """The caller when it may see the page's data: an admin key (or no auth at all, on loopback)."""
    if principal is not None and "admin" not in principal.roles:
        raise HttpError(403, "this API key has no admin role: the operator's page needs one", "forbidden")
    return principal


Admin = Depends(require_admin)


def operator_router(cache: SemanticCache, log: DecisionLog) -> APIRouter:
    """The page's routes (see the module's docstring)."""
    router = APIRouter()
    files = resources.files("cachetune.cache").joinpath("ui")

    @router.get("/ui", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return files.joinpath("index.html").read_text()

    @router.get("/ui/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        kinds = {"ui.js": "text/javascript", "ui.css": "text/css"}
        if name not in kinds:
            raise HttpError(404, f"no such file: {name}", "not_found")
        return Response(files.joinpath(name).read_text(), media_type=kinds[name])

    @router.get("/ui/api/summary")
    async def summary(admin: Principal | None = Admin) -> dict:
        return {"domains": await run_in_threadpool(_domains, cache, log), "window_minutes": log.settings.window_minutes}

    @router.get("/ui/api/decisions")
    async def decisions(domain: str | None = None, limit: int = 200, admin: Principal | None = Admin) -> dict:
        shown = log.decisions(admin.tenant if admin else None, domain, max(1, min(limit, log.settings.decisions)))
        return {"decisions": [_public(d) for d in shown]}

    @router.post("/ui/api/decisions/{seq}/wrong")
    async def wrong(seq: int, admin: Principal | None = Admin) -> dict:
        decision = log.decision(seq, admin.tenant if admin else None)
        if decision is None or decision.outcome != "hit":
            raise HttpError(404, f"decision {seq}: no served hit of this tenant among the recent decisions", "not_found")
        deleted = await run_in_threadpool(cache.feedback, decision.domain, decision.entry_id, False, decision.partition)
        decision.marked_wrong = True
        return {"deleted": deleted or 0, "decision": _public(decision)}

    @router.get("/ui/api/report/{domain}", response_class=HTMLResponse)
    async def report(domain: str, admin: Principal | None = Admin) -> str:
        path = cache.domain(domain).report
        if not path:
            raise HttpError(404, f"domain {domain}: its config names no evaluation report", "not_found")
        try:
            return await run_in_threadpool(lambda: open(path, encoding="utf-8").read())
        except OSError as error:
            raise HttpError(404, f"domain {domain}: its report cannot be read ({error.strerror})", "not_found") from None

    return router


def _public(decision: Decision) -> dict:
    return {key: value for key, value in asdict(decision).items() if key != "partition"}


def _domains(cache: SemanticCache, log: DecisionLog) -> dict:
    domains = {}
    for name, settings in cache.config.domains.items():
        try:
            entries = cache.entries(name)
        except StoreError:
            entries = None
        domains[name] = {
            **log.summary(name),
            "threshold": settings.similarity_threshold,
            "entries": entries,
            "report": bool(settings.report),
        }
    return domains
