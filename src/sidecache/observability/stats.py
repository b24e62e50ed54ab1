"""In-memory aggregates behind ``GET /stats`` and the dashboard.

Fed the same ``RequestRecord`` as the metrics, it keeps totals, breakdowns per tenant, model,
endpoint, provider and tag, recent latency samples for percentiles, and a time series of fixed-size
buckets over the last window (an hour of 10 s buckets by default). Everything is bounded:
latency samples are the most recent N per provider and outcome (recent behaviour is what an
operator watching the dashboard wants), tags past ``max_tags`` fold into ``_other``, and old
buckets are dropped.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

from sidecache.observability.record import HITS, OUTCOMES, RequestRecord

OTHER = "_other"
MAX_SLICES = 1000
"""Distinct tenants or models tracked; more (pass-through model names) fold into ``_other``."""


def percentile(samples: list[float], q: float) -> float | None:
    """Nearest-rank percentile of unsorted samples (``q`` in 0..1); ``None`` when empty."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


class _Counts:
    """Counters for one slice (a tenant, a model, a tag, or everything)."""

    __slots__ = (
        "abandoned",
        "bypass",
        "completion_tokens",
        "cost_usd",
        "errors",
        "estimated",
        "hit_exact",
        "hit_semantic",
        "misses",
        "prompt_tokens",
        "requests",
        "saved_tokens",
        "saved_usd",
    )

    def __init__(self) -> None:
        self.requests = self.hit_exact = self.hit_semantic = self.misses = 0
        self.bypass = self.errors = self.estimated = self.abandoned = 0
        self.prompt_tokens = self.completion_tokens = self.saved_tokens = 0
        self.cost_usd = self.saved_usd = 0.0

    def add(self, rec: RequestRecord) -> None:
        self.requests += 1
        outcome = rec.outcome
        if outcome == "hit-exact":
            self.hit_exact += 1
        elif outcome == "hit-semantic":
            self.hit_semantic += 1
        elif outcome == "miss":
            self.misses += 1
        elif outcome == "bypass":
            self.bypass += 1
        else:
            self.errors += 1
        if rec.status == 499:
            self.abandoned += 1
        self.prompt_tokens += rec.prompt_tokens
        self.completion_tokens += rec.completion_tokens
        self.saved_tokens += rec.saved_tokens
        self.cost_usd += rec.cost_usd
        self.saved_usd += rec.saved_usd
        if rec.usage_estimated:
            self.estimated += 1

    def to_dict(self) -> dict[str, Any]:
        hits = self.hit_exact + self.hit_semantic
        lookups = hits + self.misses
        return {
            "requests": self.requests,
            "hits": hits,
            "hit_exact": self.hit_exact,
            "hit_semantic": self.hit_semantic,
            "misses": self.misses,
            "bypass": self.bypass,
            "errors": self.errors,
            "hit_rate": hits / lookups if lookups else 0.0,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "saved_tokens": self.saved_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "saved_usd": round(self.saved_usd, 6),
            "cost_per_1k_tokens": per_1k(
                self.cost_usd, self.prompt_tokens + self.completion_tokens
            ),
            "usage_estimated": self.estimated,
            "abandoned": self.abandoned,
        }


class _Provider:
    """Per-provider health: traffic, errors by reason, recent latency and TTFT samples."""

    __slots__ = ("cost_usd", "errors", "latency", "reasons", "requests", "tokens", "ttft")

    def __init__(self, samples: int) -> None:
        self.requests = 0
        self.errors = 0
        self.cost_usd = 0.0
        self.tokens = 0
        self.reasons: dict[str, int] = {}
        self.latency: deque[float] = deque(maxlen=samples)
        self.ttft: deque[float] = deque(maxlen=samples)

    def to_dict(self) -> dict[str, Any]:
        lat, ttft = list(self.latency), list(self.ttft)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.errors / self.requests if self.requests else 0.0,
            "errors_by_reason": dict(self.reasons),
            "cost_usd": round(self.cost_usd, 6),
            "cost_per_1k_tokens": per_1k(self.cost_usd, self.tokens),
            "latency_p50_ms": _ms(percentile(lat, 0.5)),
            "latency_p95_ms": _ms(percentile(lat, 0.95)),
            "ttft_p50_ms": _ms(percentile(ttft, 0.5)),
            "ttft_p95_ms": _ms(percentile(ttft, 0.95)),
        }


class _Bucket:
    __slots__ = ("cost_usd", "outcomes", "saved_tokens", "saved_usd", "tokens")

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self.tokens = self.saved_tokens = 0
        self.cost_usd = self.saved_usd = 0.0


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 2)


def per_1k(usd: float, tokens: int) -> float | None:
    """Dollars per thousand tokens spent; ``None`` before any token."""
    return round(usd * 1000.0 / tokens, 6) if tokens else None


class Stats:
    """Aggregates ``RequestRecord``s; ``snapshot()`` is the ``/stats`` JSON body."""

    def __init__(
        self,
        *,
        bucket_seconds: int = 10,
        window_seconds: int = 3600,
        latency_samples: int = 1024,
        max_tags: int = 200,
    ) -> None:
        self.bucket_seconds = bucket_seconds
        self._buckets_kept = max(1, window_seconds // bucket_seconds)
        self._samples = latency_samples
        self._max_tags = max_tags
        self._started = time.time()
        self._total = _Counts()
        self._tenants: dict[str, _Counts] = {}
        self._models: dict[str, _Counts] = {}
        self._endpoints: dict[str, _Counts] = {}
        self._tags: dict[str, _Counts] = {}
        self._providers: dict[str, _Provider] = {}
        self._outcome_latency = {o: deque[float](maxlen=latency_samples) for o in OUTCOMES}
        self._series: dict[int, _Bucket] = {}
        self._first_bucket: int | None = None

    def record(self, rec: RequestRecord, now: float | None = None) -> None:
        """Add one finished request (constant time)."""
        t = time.time() if now is None else now
        self._total.add(rec)
        _slice(self._tenants, rec.tenant or "-").add(rec)
        _slice(self._models, rec.model or "-").add(rec)
        _slice(self._endpoints, rec.endpoint or "-").add(rec)
        for k, v in rec.tags.items():
            label = f"{k}={v}"
            if label not in self._tags and len(self._tags) >= self._max_tags:
                label = OTHER
            _slice(self._tags, label).add(rec)
        self._outcome_latency[rec.outcome].append(rec.latency_s)
        if rec.provider and rec.outcome not in HITS:
            p = self._provider(rec.provider)
            p.requests += 1
            p.cost_usd += rec.cost_usd
            p.tokens += rec.prompt_tokens + rec.completion_tokens
            if rec.outcome == "error":
                p.errors += 1
            else:
                p.latency.append(rec.latency_s)
                if rec.ttft_s is not None:
                    p.ttft.append(rec.ttft_s)
        self._bucket(t, rec)

    def record_upstream_error(self, provider: str, reason: str) -> None:
        """Count a failed upstream attempt by reason (retried ones included)."""
        reasons = self._provider(provider).reasons
        reasons[reason] = reasons.get(reason, 0) + 1

    def _provider(self, name: str) -> _Provider:
        p = self._providers.get(name)
        if p is None:
            p = self._providers[name] = _Provider(self._samples)
        return p

    def _bucket(self, t: float, rec: RequestRecord) -> None:
        idx = int(t // self.bucket_seconds)
        b = self._series.get(idx)
        if b is None:
            b = self._series[idx] = _Bucket()
            if self._first_bucket is None:
                self._first_bucket = idx
            oldest = idx - self._buckets_kept
            for stale in [i for i in self._series if i <= oldest]:
                del self._series[stale]
        b.outcomes[rec.outcome] += 1
        b.tokens += rec.prompt_tokens + rec.completion_tokens
        b.saved_tokens += rec.saved_tokens
        b.cost_usd += rec.cost_usd
        b.saved_usd += rec.saved_usd

    def _points(self, now: float) -> list[dict[str, Any]]:
        """Zero-filled buckets from the first request (at most one window back) to now."""
        if self._first_bucket is None:
            return []
        last = int(now // self.bucket_seconds)
        first = max(self._first_bucket, last - self._buckets_kept + 1)
        points: list[dict[str, Any]] = []
        for idx in range(first, last + 1):
            b = self._series.get(idx)
            point: dict[str, Any] = {"t": idx * self.bucket_seconds}
            if b is None:
                point.update(dict.fromkeys(OUTCOMES, 0))
                point.update(tokens=0, saved_tokens=0, cost_usd=0.0, saved_usd=0.0)
            else:
                point.update(b.outcomes)
                point.update(
                    tokens=b.tokens,
                    saved_tokens=b.saved_tokens,
                    cost_usd=round(b.cost_usd, 6),
                    saved_usd=round(b.saved_usd, 6),
                )
            points.append(point)
        return points

    def snapshot(
        self, extra: dict[str, Any] | None = None, now: float | None = None
    ) -> dict[str, Any]:
        """The ``/stats`` document; ``extra`` (cache stats, circuit states) is merged in.

        ``extra`` is expected to carry ``cache`` (a flat dict of figures such as ``entries`` and
        ``bytes``) and ``circuits`` (``{target: "closed" | "open" | "half-open"}`` or
        ``{target: {"state": ..., ...}}``); the dashboard shows both.
        """
        t = time.time() if now is None else now
        total = self._total.to_dict()
        latency = {
            o: {
                "p50_ms": _ms(percentile(list(s), 0.5)),
                "p95_ms": _ms(percentile(list(s), 0.95)),
            }
            for o, s in self._outcome_latency.items()
            if s
        }
        lookups = total["hits"] + total["misses"]
        doc: dict[str, Any] = {
            "generated_at": t,
            "uptime_s": round(t - self._started, 3),
            "totals": total,
            "hit_rate": {
                "overall": total["hit_rate"],
                "exact": total["hit_exact"] / lookups if lookups else 0.0,
                "semantic": total["hit_semantic"] / lookups if lookups else 0.0,
            },
            "outcomes": {o: total[_OUTCOME_FIELD[o]] for o in OUTCOMES},
            "latency_by_outcome": latency,
            "tenants": {k: v.to_dict() for k, v in sorted(self._tenants.items())},
            "models": {k: v.to_dict() for k, v in sorted(self._models.items())},
            "endpoints": {k: v.to_dict() for k, v in sorted(self._endpoints.items())},
            "providers": {k: v.to_dict() for k, v in sorted(self._providers.items())},
            "tags": {k: v.to_dict() for k, v in sorted(self._tags.items())},
            "series": {"bucket_seconds": self.bucket_seconds, "points": self._points(t)},
        }
        if extra:
            doc.update(extra)
        return doc


_OUTCOME_FIELD = {
    "hit-exact": "hit_exact",
    "hit-semantic": "hit_semantic",
    "miss": "misses",
    "bypass": "bypass",
    "error": "errors",
}


def _slice(table: dict[str, _Counts], key: str) -> _Counts:
    c = table.get(key)
    if c is None:
        if len(table) >= MAX_SLICES:
            key = OTHER
            c = table.get(key)
        if c is None:
            c = table[key] = _Counts()
    return c
