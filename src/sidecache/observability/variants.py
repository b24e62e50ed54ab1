"""Figures per A/B variant: what ``/stats`` shows under ``variants`` to compare the arms of
a split side by side.

Per ``(model alias, variant)``: requests, hit rate, error rate, latency and time to first
token (p50/p95 over the recent answers that came from upstream: a cache hit's latency says
nothing about a model), tokens, dollars and dollars per 1K tokens. A request whose variant's
target could not answer is served by another target (the alias's fallback), so the client
sees no error; the variant's ``error_rate`` counts it all the same (``errors`` the client saw,
plus ``fallbacks``), because it measures the variant, not the alias.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from sidecache.observability.record import HITS, RequestRecord
from sidecache.observability.stats import per_1k, percentile

MAX_ROWS = 200
"""Variants are configured, so this bound never binds; it keeps memory bounded regardless."""


class _Row:
    __slots__ = (
        "completion_tokens",
        "cost_usd",
        "errors",
        "fallbacks",
        "hits",
        "latency",
        "misses",
        "prompt_tokens",
        "requests",
        "ttft",
    )

    def __init__(self, samples: int) -> None:
        self.requests = self.hits = self.misses = self.errors = self.fallbacks = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.cost_usd = 0.0
        self.latency: deque[float] = deque(maxlen=samples)
        self.ttft: deque[float] = deque(maxlen=samples)

    def add(self, rec: RequestRecord) -> None:
        self.requests += 1
        if rec.outcome in HITS:
            self.hits += 1
        elif rec.outcome == "miss":
            self.misses += 1
        elif rec.outcome == "error":
            self.errors += 1
        if rec.fallback:
            self.fallbacks += 1
        self.prompt_tokens += rec.prompt_tokens
        self.completion_tokens += rec.completion_tokens
        self.cost_usd += rec.cost_usd
        if rec.provider and rec.outcome not in HITS and rec.outcome != "error":
            self.latency.append(rec.latency_s)
            if rec.ttft_s is not None:
                self.ttft.append(rec.ttft_s)

    def to_dict(self) -> dict[str, Any]:
        lookups = self.hits + self.misses
        lat, ttft = list(self.latency), list(self.ttft)
        tokens = self.prompt_tokens + self.completion_tokens
        return {
            "requests": self.requests,
            "hits": self.hits,
            "misses": self.misses,
            "errors": self.errors,
            "fallbacks": self.fallbacks,
            "hit_rate": self.hits / lookups if lookups else 0.0,
            "error_rate": (
                (self.errors + self.fallbacks) / self.requests if self.requests else 0.0
            ),
            "latency_p50_ms": _ms(percentile(lat, 0.5)),
            "latency_p95_ms": _ms(percentile(lat, 0.95)),
            "ttft_p50_ms": _ms(percentile(ttft, 0.5)),
            "ttft_p95_ms": _ms(percentile(ttft, 0.95)),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "cost_per_1k_tokens": per_1k(self.cost_usd, tokens),
        }


class VariantStats:
    """Aggregates ``RequestRecord``s that carry a variant."""

    def __init__(self, latency_samples: int = 1024) -> None:
        self._samples = latency_samples
        self._rows: dict[tuple[str, str], _Row] = {}

    def record(self, rec: RequestRecord) -> None:
        if not rec.variant:
            return
        key = (rec.model, rec.variant)
        row = self._rows.get(key)
        if row is None:
            if len(self._rows) >= MAX_ROWS:
                return
            row = self._rows[key] = _Row(self._samples)
        row.add(rec)

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{alias: {variant: figures}}``."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for (alias, variant), row in sorted(self._rows.items()):
            out.setdefault(alias, {})[variant] = row.to_dict()
        return out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 2)
