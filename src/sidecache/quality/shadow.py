"""Shadow traffic figures: an alias's primary targets against its shadow target, side by side.

A sampled share of the alias's misses is sent again, after the client's answer is done, to the
shadow target (``[models.ALIAS] shadow = {target, rate}``). The shadow's answer is never shown,
never cached and never charged to a tenant; what is kept is the comparison, per alias, over the
same requests: latency, cost and error rate of each side, and how close the two answers are
(the cosine of their embeddings, and the share that ``AnswerComparer`` calls the same answer).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sidecache.observability.stats import percentile

__all__ = ["Arm", "ShadowBook"]

SAMPLES = 1024
"""Recent latencies and cosines kept per alias for the percentiles."""


@dataclass
class Arm:
    """One side of the comparison (the primary or the shadow) over the mirrored requests."""

    requests: int = 0
    errors: int = 0
    cost_usd: float = 0.0
    latency: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))

    def add(self, latency_s: float, cost_usd: float, error: bool) -> None:
        self.requests += 1
        self.cost_usd += cost_usd
        if error:
            self.errors += 1
        else:
            self.latency.append(latency_s)

    def to_dict(self) -> dict[str, Any]:
        lat = list(self.latency)
        p50, p95 = percentile(lat, 0.5), percentile(lat, 0.95)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.errors / self.requests if self.requests else 0.0,
            "cost_usd": round(self.cost_usd, 6),
            "latency_p50_ms": None if p50 is None else round(p50 * 1000, 2),
            "latency_p95_ms": None if p95 is None else round(p95 * 1000, 2),
        }


@dataclass
class AliasShadow:
    target: str
    rate: float
    primary: Arm = field(default_factory=Arm)
    shadow: Arm = field(default_factory=Arm)
    compared: int = 0
    agreed: int = 0
    cosines: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    cosine_sum: float = 0.0
    cosine_n: int = 0
    skipped: int = 0
    """Sampled misses not mirrored because the client left before the end."""

    def to_dict(self) -> dict[str, Any]:
        p50 = percentile(list(self.cosines), 0.5)
        return {
            "target": self.target,
            "rate": self.rate,
            "mirrored": self.shadow.requests,
            "skipped": self.skipped,
            "primary": self.primary.to_dict(),
            "shadow": self.shadow.to_dict(),
            "compared": self.compared,
            "agreement_rate": self.agreed / self.compared if self.compared else None,
            "answer_cosine_mean": (
                round(self.cosine_sum / self.cosine_n, 4) if self.cosine_n else None
            ),
            "answer_cosine_p50": None if p50 is None else round(p50, 4),
        }


class ShadowBook:
    """The shadow comparison of every alias that has a shadow target."""

    def __init__(self) -> None:
        self.aliases: dict[str, AliasShadow] = {}

    def alias(self, alias: str, target: str, rate: float) -> AliasShadow:
        book = self.aliases.get(alias)
        if book is None:
            book = self.aliases[alias] = AliasShadow(target, rate)
        return book

    def compared(self, book: AliasShadow, agree: bool, cosine: float | None) -> None:
        book.compared += 1
        book.agreed += int(agree)
        if cosine is not None:
            book.cosines.append(cosine)
            book.cosine_sum += cosine
            book.cosine_n += 1

    def snapshot(self) -> dict[str, Any]:
        return {alias: book.to_dict() for alias, book in sorted(self.aliases.items())}
