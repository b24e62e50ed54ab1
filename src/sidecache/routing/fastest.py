"""``fastest``: the target with the lowest recent latency, exploring a little.

Latency is the target's estimate for this kind of request (time to first byte for a stream,
whole answer otherwise; see ``TargetHealth.latency``), divided by its recent success rate: a
target that answers quickly but fails half the time costs a retry every other request. A
target not measured yet goes first (it is measured at once), one request at a time: while its
first answer is on its way it ranks last, so a slow new target is not sent every request that
arrives before it has answered once. A small share of requests
(``routing.health.explore_share``) goes first to another target picked at random, so a target
that was slow and has recovered is noticed.
"""

from __future__ import annotations

import math
import random

from sidecache.routing.choice import Choice, Turns, rank


class Fastest:
    def __init__(self, explore: float = 0.05, rng: random.Random | None = None) -> None:
        self.explore = explore
        self._rng = rng or random.Random()
        self._turns = Turns()

    def order(self, choice: Choice) -> list[int]:
        stream = choice.request.stream
        scores: list[float | None] = []
        for t in choice.targets:
            latency = t.health.latency(stream)
            ok = max(0.05, 1.0 - t.health.error_rate())
            if latency is None:  # unmeasured: first, unless its first request is still out
                scores.append(math.inf if t.health.in_flight else None)
            else:
                scores.append(latency / ok)
        order = rank(scores, self._turns(), unknown_first=True)
        if len(order) > 1 and self._rng.random() < self.explore:
            pick = order.pop(self._rng.randrange(1, len(order)))
            order.insert(0, pick)
        return order
