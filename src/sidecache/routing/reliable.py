"""``reliable``: the target with the lowest recent error rate, then the lowest latency.

Error rates within ``BAND`` of each other count as equal (0.3% and 0.8% are both "fine"), so
latency decides between healthy targets instead of noise. A target not measured yet is tried
first among its band; equal targets take turns.
"""

from __future__ import annotations

import math

from sidecache.routing.choice import Choice, Turns, rank

BAND = 0.02


class Reliable:
    def __init__(self) -> None:
        self._turns = Turns()

    def order(self, choice: Choice) -> list[int]:
        stream = choice.request.stream
        scores: list[float | None] = []
        for t in choice.targets:
            band = math.floor(t.health.error_rate() / BAND)
            latency = t.health.latency(stream)
            # the band dominates; within a band, seconds of latency (capped far above any
            # real latency) order the targets, unmeasured ones first
            scores.append(band * 1e6 + (0.0 if latency is None else min(latency, 1e5)))
        return rank(scores, self._turns())
