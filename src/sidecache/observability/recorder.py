"""One call per finished request updates metrics, stats and the access log together."""

from __future__ import annotations

from typing import Any

from sidecache.config import ObservabilityConfig
from sidecache.observability.logs import AccessLog
from sidecache.observability.metrics import Metrics
from sidecache.observability.record import RequestRecord
from sidecache.observability.routing_metrics import RoutingMetrics
from sidecache.observability.stats import Stats
from sidecache.observability.variants import VariantStats


class Recorder:
    """The observability sinks the gateway keeps on ``app.state``.

    Built from config in the lifespan hook; each method is synchronous and cheap, so the request
    path calls it directly.
    """

    def __init__(
        self, config: ObservabilityConfig | None = None, *, log_prompts: bool = False
    ) -> None:
        cfg = config if config is not None else ObservabilityConfig()
        self.metrics = Metrics()
        self.routing = RoutingMetrics(self.metrics.registry)
        self.variants = VariantStats(cfg.latency_samples)
        self.stats = Stats(
            bucket_seconds=cfg.stats_bucket_seconds,
            window_seconds=cfg.stats_window_seconds,
            latency_samples=cfg.latency_samples,
            max_tags=cfg.max_tags,
        )
        self.access_log: AccessLog | None = (
            AccessLog(log_prompts=log_prompts) if cfg.access_log else None
        )

    def record(self, rec: RequestRecord, prompt: str | None = None) -> None:
        """Account one finished request; ``prompt`` is logged only if ``log_prompts`` is on."""
        self.metrics.record_request(rec)
        self.stats.record(rec)
        if rec.variant:
            self.routing.record_request(rec)
            self.variants.record(rec)
        if self.access_log is not None:
            self.access_log.log(rec, prompt)

    def start(self) -> None:
        """Serving begins: access-log lines are written off the event loop from now on."""
        if self.access_log is not None:
            self.access_log.start()

    def close(self) -> None:
        """Serving ended: every access-log line queued is written."""
        if self.access_log is not None:
            self.access_log.close()

    def upstream_error(self, provider: str, reason: str) -> None:
        """Count one failed upstream attempt (the router calls this for each failed try)."""
        self.metrics.record_upstream_error(provider, reason)
        self.stats.record_upstream_error(provider, reason)

    def set_circuit(self, target: str, is_open: bool) -> None:
        self.metrics.set_circuit(target, is_open)

    def set_cache_size(self, entries: int, size_bytes: int) -> None:
        self.metrics.set_cache_size(entries, size_bytes)

    def snapshot(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``/stats`` document."""
        doc = self.stats.snapshot(extra)
        doc["variants"] = self.variants.snapshot()
        return doc
