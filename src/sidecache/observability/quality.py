"""Prometheus figures of side traffic and hit quality, read at scrape time.

A collector over the ``quality`` section of ``/stats`` (a plain dict), so the figures are kept
once, where they are made, and ``/metrics`` and ``/stats`` can never disagree. Registered on
the gateway's own registry beside ``Metrics``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["QualityCollector"]

Snapshot = Callable[[], dict[str, Any]]

_COUNTERS = (
    ("hits_audited", "sidecache_hits_audited", "Semantic hits asked again upstream and compared."),
    (
        "audit_disagreements",
        "sidecache_audit_disagreements",
        "Audited hits whose fresh answer differed from the served one.",
    ),
    (
        "near_misses_checked",
        "sidecache_near_misses_checked",
        "Candidates under the threshold compared with the fresh answer (no upstream cost).",
    ),
    (
        "audits_skipped_budget",
        "sidecache_audits_skipped_budget",
        "Audits not sent because the alias's audit budget for the day was used up.",
    ),
)


class QualityCollector(Collector):
    """Yields the side-traffic and hit-quality metrics from ``snapshot()`` at each scrape."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def describe(self) -> list[Any]:
        return []  # figures appear as aliases get traffic: nothing to declare up front

    def collect(self) -> Iterator[Any]:
        doc = self.snapshot()
        models: dict[str, dict[str, Any]] = doc.get("models", {})
        for field, name, text in _COUNTERS:
            family = CounterMetricFamily(name, text, labels=["model"])
            for alias, m in models.items():
                family.add_metric([alias], float(m.get(field) or 0))
            yield family
        threshold = GaugeMetricFamily(
            "sidecache_effective_threshold",
            "Similarity threshold each alias serves semantic hits at now.",
            labels=["model"],
        )
        changes = CounterMetricFamily(
            "sidecache_threshold_changes",
            "Changes of the effective threshold since start (history in /stats).",
            labels=["model"],
        )
        rate = GaugeMetricFamily(
            "sidecache_false_hit_rate",
            "Estimated false-hit rate among semantic hits at the effective threshold, with its"
            " lower and upper bounds (its 10% and 90% posterior quantiles).",
            labels=["model", "bound"],
        )
        for alias, m in models.items():
            threshold.add_metric([alias], float(m["effective_threshold"]))
            changes.add_metric([alias], float(m.get("threshold_changes", 0)))
            for bound, key in (
                ("estimate", "false_hit_rate"),
                ("lower", "false_hit_rate_lower"),
                ("upper", "false_hit_rate_upper"),
            ):
                if m.get(key) is not None:
                    rate.add_metric([alias, bound], float(m[key]))
        yield threshold
        yield changes
        yield rate
        feedback = CounterMetricFamily(
            "sidecache_hit_feedback",
            "Verdicts on hits sent to POST /v1/cache/feedback.",
            labels=["model", "tenant", "verdict"],
        )
        for alias, tenants in doc.get("feedback", {}).items():
            for tenant, verdicts in tenants.items():
                for verdict, n in verdicts.items():
                    feedback.add_metric([alias, tenant, verdict], float(n))
        yield feedback
        yield from _side(doc)


def _side(doc: dict[str, Any]) -> Iterator[Any]:
    spend = CounterMetricFamily(
        "sidecache_side_cost_usd",
        "USD spent on side traffic (never charged to a tenant), by kind (audit, shadow).",
        labels=["kind", "model"],
    )
    for alias, m in doc.get("models", {}).items():
        spend.add_metric(["audit", alias], float(m.get("audit_spend_usd") or 0))
        spend.add_metric(["shadow", alias], float(m.get("shadow_spend_usd") or 0))
    yield spend
    lane = doc.get("side_traffic", {})
    calls = CounterMetricFamily(
        "sidecache_side_calls",
        "Side calls (shadow, audit, compare) by result: started, dropped (lane full), failed.",
        labels=["kind", "model", "result"],
    )
    for result in ("started", "dropped", "failed"):
        for kind, aliases in lane.get(result, {}).items():
            for alias, n in aliases.items():
                calls.add_metric([kind, alias, result], float(n))
    yield calls
    in_flight = GaugeMetricFamily("sidecache_side_in_flight", "Side calls running now.")
    in_flight.add_metric([], float(lane.get("in_flight", 0)))
    yield in_flight
    arms = GaugeMetricFamily(
        "sidecache_shadow_latency_p50_seconds",
        "Median latency over mirrored requests, primary against shadow.",
        labels=["model", "arm"],
    )
    errors = CounterMetricFamily(
        "sidecache_shadow_errors",
        "Failed answers over mirrored requests, primary against shadow.",
        labels=["model", "arm"],
    )
    cosine = GaugeMetricFamily(
        "sidecache_shadow_answer_cosine",
        "Mean cosine of the primary's and the shadow's answer embeddings.",
        labels=["model"],
    )
    for alias, s in doc.get("shadow", {}).items():
        for arm in ("primary", "shadow"):
            p50 = s[arm].get("latency_p50_ms")
            if p50 is not None:
                arms.add_metric([alias, arm], p50 / 1000.0)
            errors.add_metric([alias, arm], float(s[arm].get("errors") or 0))
        if s.get("answer_cosine_mean") is not None:
            cosine.add_metric([alias], float(s["answer_cosine_mean"]))
    yield arms
    yield errors
    yield cosine
