"""Prometheus metrics on a registry of their own (no process-global state).

``record_request`` runs once per request, so the labelled children it touches are looked up
once per label combination and kept in a dict. Label values that clients control (model names
in pass-through mode, tag-free tenants) are capped: past ``max_label_values`` distinct values a
label reads ``_other`` so a misbehaving client cannot blow up the series count.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from sidecache.observability.record import HITS, RequestRecord

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
OTHER = "_other"


class _Capped:
    """Remembers up to ``limit`` distinct values; later new ones map to ``_other``."""

    __slots__ = ("limit", "seen")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) >= self.limit:
            return OTHER
        self.seen.add(value)
        return value


class Metrics:
    """All gateway metrics; ``render()`` gives the text exposition for ``GET /metrics``."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, max_label_values: int = 500) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "sidecache_requests",
            "Requests by cache outcome (hit-exact, hit-semantic, miss, bypass, error).",
            ["outcome", "tenant", "model", "provider"],
            registry=r,
        )
        self.tokens = Counter(
            "sidecache_tokens",
            "Tokens spent upstream, by kind (prompt, completion).",
            ["tenant", "model", "kind"],
            registry=r,
        )
        self.tokens_saved = Counter(
            "sidecache_tokens_saved",
            "Tokens not spent upstream because the cache answered.",
            ["tenant", "model"],
            registry=r,
        )
        self.cost = Counter(
            "sidecache_cost_usd", "USD spent upstream.", ["tenant", "model"], registry=r
        )
        self.cost_saved = Counter(
            "sidecache_cost_saved_usd",
            "USD not spent upstream because the cache answered.",
            ["tenant", "model"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "sidecache_upstream_errors",
            "Failed upstream attempts (including ones a retry recovered from), by reason.",
            ["provider", "reason"],
            registry=r,
        )
        self.endpoint_requests = Counter(
            "sidecache_endpoint_requests",
            "Requests by API endpoint (chat.completions, responses, messages, embeddings)"
            " and cache outcome.",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "sidecache_request_latency_seconds",
            "Time from request to the last byte of the response.",
            ["provider", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "sidecache_ttft_seconds",
            "Time to the first token of a streamed response.",
            ["provider"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.circuit_open = Gauge(
            "sidecache_circuit_open",
            "1 while a target's circuit breaker is open.",
            ["target"],
            registry=r,
        )
        self.cache_entries = Gauge(
            "sidecache_cache_entries", "Entries in the response cache.", registry=r
        )
        self.cache_bytes = Gauge(
            "sidecache_cache_bytes", "Approximate size of the response cache.", registry=r
        )
        self.hit_ratio = Gauge(
            "sidecache_cache_hit_ratio",
            "Hits / (hits + misses) since start; bypassed and failed requests are not counted.",
            registry=r,
        )
        self._tenant = _Capped(max_label_values)
        self._model = _Capped(max_label_values)
        self._children: dict[tuple[str, str, str, str], tuple[Any, ...]] = {}
        self._endpoints: dict[tuple[str, str], Any] = {}
        self._hits = 0
        self._lookups = 0

    def _series(self, outcome: str, tenant: str, model: str, provider: str) -> tuple[Any, ...]:
        key = (outcome, tenant, model, provider)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(outcome, tenant, model, provider),
                self.tokens.labels(tenant, model, "prompt"),
                self.tokens.labels(tenant, model, "completion"),
                self.tokens_saved.labels(tenant, model),
                self.cost.labels(tenant, model),
                self.cost_saved.labels(tenant, model),
                self.latency.labels(provider, outcome),
                self.ttft.labels(provider),
            )
            self._children[key] = children
        return children

    def record_request(self, rec: RequestRecord) -> None:
        """Count one finished request (a few dict lookups and increments)."""
        tenant = self._tenant(rec.tenant)
        model = self._model(rec.model)
        requests, prompt, completion, saved, cost, cost_saved, latency, ttft = self._series(
            rec.outcome, tenant, model, rec.provider
        )
        requests.inc()
        by_endpoint = self._endpoints.get((rec.endpoint, rec.outcome))
        if by_endpoint is None:  # endpoints are the gateway's own names: a few series
            by_endpoint = self.endpoint_requests.labels(rec.endpoint, rec.outcome)
            self._endpoints[(rec.endpoint, rec.outcome)] = by_endpoint
        by_endpoint.inc()
        if rec.prompt_tokens:
            prompt.inc(rec.prompt_tokens)
        if rec.completion_tokens:
            completion.inc(rec.completion_tokens)
        if rec.saved_tokens:
            saved.inc(rec.saved_tokens)
        if rec.cost_usd:
            cost.inc(rec.cost_usd)
        if rec.saved_usd:
            cost_saved.inc(rec.saved_usd)
        latency.observe(rec.latency_s)
        if rec.ttft_s is not None:
            ttft.observe(rec.ttft_s)
        if rec.outcome in HITS:
            self._hits += 1
            self._lookups += 1
        elif rec.outcome == "miss":
            self._lookups += 1
        else:
            return
        self.hit_ratio.set(self._hits / self._lookups)

    def record_upstream_error(self, provider: str, reason: str) -> None:
        """Count one failed upstream attempt; the router calls this for every failed try."""
        self.upstream_errors.labels(provider, reason).inc()

    def set_circuit(self, target: str, is_open: bool) -> None:
        self.circuit_open.labels(target).set(1 if is_open else 0)

    def set_cache_size(self, entries: int, size_bytes: int) -> None:
        self.cache_entries.set(entries)
        self.cache_bytes.set(size_bytes)

    def render(self) -> bytes:
        """The text exposition format (serve with ``content_type``)."""
        return generate_latest(self.registry)
