"""The service's Prometheus metrics, the cache API's and the gateway's, in one registry."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """Counters, histograms and gauges of one service; `domains` bounds the domain label's values."""

    def __init__(self, domains: list[str]) -> None:
        self.domains = frozenset(domains)
        self.registry = registry = CollectorRegistry()
        self.hits = Counter(
            "cachetune_hits",
            "Hits served: by tier (exact repeat, semantic rewording) and path (check: /v1/cache/check, gateway: chat completions)",
            ["domain", "tier", "path"],
            registry=registry,
        )
        self.misses = Counter("cachetune_misses", "Cache misses", ["domain"], registry=registry)
        self.bypassed = Counter("cachetune_bypassed", "Checks not looked up, by reason (too_long)", ["domain", "reason"], registry=registry)
        self.stores = Counter("cachetune_stores", "Entries stored", ["domain"], registry=registry)
        self.invalidated = Counter("cachetune_invalidated", "Entries deleted by invalidation", ["domain"], registry=registry)
        self.refusals = Counter(
            "cachetune_refusals", "Candidates the verify stage refused, by reason", ["domain", "reason"], registry=registry
        )
        self.feedback = Counter(
            "cachetune_feedback",
            "Served hits reported correct or wrong: their precision in production",
            ["domain", "verdict"],
            registry=registry,
        )
        self.errors = Counter("cachetune_errors", "Requests refused or failed", ["domain", "kind"], registry=registry)
        self.latency = Histogram(
            "cachetune_request_seconds", "Time to answer", ["domain", "operation"], buckets=LATENCY_BUCKETS, registry=registry
        )
        self.entries = Gauge("cachetune_entries", "Entries stored now", ["domain"], registry=registry)
        self.store_errors = Gauge(
            "cachetune_store_errors", "Store calls that failed since start (failed lookups answered as misses included)", registry=registry
        )
        self.requests = Counter("cachetune_gateway_requests", "Chat completions by cache outcome", ["domain", "outcome"], registry=registry)
        self.upstream_seconds = Histogram(
            "cachetune_upstream_seconds", "Upstream time to the end of an answer", buckets=UPSTREAM_BUCKETS, registry=registry
        )
        self.upstream_errors = Counter("cachetune_upstream_errors", "Upstream failures by kind", ["kind"], registry=registry)
        self.second_opinions = Counter(
            "cachetune_second_opinions",
            "Lookups whose candidate near the threshold the second model re-scored",
            ["domain"],
            registry=registry,
        )
        self.second_opinion_seconds = Histogram(
            "cachetune_second_opinion_seconds", "Time the second model took", ["domain"], buckets=LATENCY_BUCKETS, registry=registry
        )
        self.store_failures = Counter(
            "cachetune_gateway_store_failures", "Upstream answers relayed but not stored: the store failed", registry=registry
        )

    def label(self, domain: str | None) -> str:
        """A domain as a label value: only configured domains, so that a caller cannot grow the metrics without bound."""
        return domain if domain in self.domains else "none"

    def count_lookup(self, domain: str, found) -> None:
        """A lookup's refusals by reason, and its second opinion (how often the second model was asked, its time)."""
        for refusal in found.refused:
            if refusal.reason != "outranked":  # a reason label: guard:NAME or threshold (a bounded set)
                self.refusals.labels(domain, refusal.reason).inc()
        if found.second_opinion_ms is not None:
            self.second_opinions.labels(domain).inc()
            self.second_opinion_seconds.labels(domain).observe(found.second_opinion_ms / 1000)
