"""Prometheus series for policy routing, on the gateway's registry next to ``Metrics``.

* per A/B variant: ``sidecache_variant_requests_total{model,variant,outcome}``,
  ``sidecache_variant_tokens_total{model,variant}``, ``sidecache_variant_cost_usd_total``,
  ``sidecache_variant_latency_seconds`` (answers from upstream only);
* ``sidecache_cost_per_1k_tokens_usd{by,name}``: dollars per thousand tokens spent, by model,
  provider, tenant, tag and variant (``by=variant`` names read ``alias/variant``), set from the
  ``/stats`` figures at scrape time;
* per target: ``sidecache_target_latency_seconds{target,estimate}`` (``ttft``, ``total``,
  ``total_p95``), ``sidecache_target_error_rate``, ``sidecache_target_in_flight``;
* ``sidecache_budget_alerts_total{scope,threshold,status}``.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sidecache.observability.metrics import LATENCY_BUCKETS
from sidecache.observability.record import HITS, RequestRecord

_SLICES = {"models": "model", "providers": "provider", "tenants": "tenant", "tags": "tag"}


class RoutingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.variant_requests = Counter(
            "sidecache_variant_requests",
            "Requests per A/B variant of a model alias, by outcome.",
            ["model", "variant", "outcome"],
            registry=r,
        )
        self.variant_tokens = Counter(
            "sidecache_variant_tokens",
            "Tokens spent upstream per A/B variant.",
            ["model", "variant"],
            registry=r,
        )
        self.variant_cost = Counter(
            "sidecache_variant_cost_usd",
            "USD spent upstream per A/B variant.",
            ["model", "variant"],
            registry=r,
        )
        self.variant_latency = Histogram(
            "sidecache_variant_latency_seconds",
            "Latency of answers from upstream per A/B variant.",
            ["model", "variant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cost_per_1k = Gauge(
            "sidecache_cost_per_1k_tokens_usd",
            "USD per 1,000 tokens spent upstream, by model, provider, tenant, tag or variant.",
            ["by", "name"],
            registry=r,
        )
        self.target_latency = Gauge(
            "sidecache_target_latency_seconds",
            "The router's recent latency estimate per target (ttft, total, total_p95).",
            ["target", "estimate"],
            registry=r,
        )
        self.target_errors = Gauge(
            "sidecache_target_error_rate",
            "The router's recent error-rate estimate per target.",
            ["target"],
            registry=r,
        )
        self.target_in_flight = Gauge(
            "sidecache_target_in_flight", "Requests in flight per target.", ["target"], registry=r
        )
        self.alerts = Counter(
            "sidecache_budget_alerts",
            "Budget alerts raised, by budget scope, threshold and delivery status.",
            ["scope", "threshold", "status"],
            registry=r,
        )

    def record_request(self, rec: RequestRecord) -> None:
        if not rec.variant:
            return
        self.variant_requests.labels(rec.model, rec.variant, rec.outcome).inc()
        tokens = rec.prompt_tokens + rec.completion_tokens
        if tokens:
            self.variant_tokens.labels(rec.model, rec.variant).inc(tokens)
        if rec.cost_usd:
            self.variant_cost.labels(rec.model, rec.variant).inc(rec.cost_usd)
        if rec.provider and rec.outcome not in HITS and rec.outcome != "error":
            self.variant_latency.labels(rec.model, rec.variant).observe(rec.latency_s)

    def refresh(self, stats: dict[str, Any], targets: dict[str, dict[str, Any]]) -> None:
        """Gauges read at scrape time from the ``/stats`` document and the router."""
        for section, by in _SLICES.items():
            for name, row in (stats.get(section) or {}).items():
                value = row.get("cost_per_1k_tokens")
                if value is not None:
                    self.cost_per_1k.labels(by, name).set(value)
        for alias, variants in (stats.get("variants") or {}).items():
            for variant, row in variants.items():
                value = row.get("cost_per_1k_tokens")
                if value is not None:
                    self.cost_per_1k.labels("variant", f"{alias}/{variant}").set(value)
        for target, t in targets.items():
            for estimate, field in (
                ("ttft", "ttft_ms"),
                ("total", "latency_ms"),
                ("total_p95", "latency_p95_ms"),
            ):
                if t.get(field) is not None:
                    self.target_latency.labels(target, estimate).set(t[field] / 1000.0)
            self.target_errors.labels(target).set(t.get("error_rate", 0.0))
            self.target_in_flight.labels(target).set(t.get("in_flight", 0))

    def alert(self, scope: str, threshold: float, status: str) -> None:
        self.alerts.labels(scope, f"{threshold:g}", status).inc()
