"""Target choice: the order in which an alias's targets are tried for one request.

Each strategy is a small class with ``order(choice) -> list[int]``; the router walks that
order, skipping targets that may not or cannot take the request (region, open circuit,
Retry-After, upstream limits), so fallback falls out of the same loop. ``STRATEGIES`` maps the
names used in ``[models.ALIAS] strategy`` to factories; the strategies that rank by price,
latency, load or errors live in modules of their own.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from typing import Protocol

from sidecache.config import RoutingConfig
from sidecache.routing.cheapest import Cheapest
from sidecache.routing.choice import Choice
from sidecache.routing.fastest import Fastest
from sidecache.routing.least_busy import LeastBusy
from sidecache.routing.reliable import Reliable


class Strategy(Protocol):
    def order(self, choice: Choice) -> list[int]:
        """Indices of the targets, first choice first."""
        ...


class RoundRobin:
    """Each request starts one target further along; the rest follow as fallbacks."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._next = itertools.count()

    def order(self, choice: Choice | None = None) -> list[int]:
        start = next(self._next) % self.n
        return [(start + i) % self.n for i in range(self.n)]


class Weighted:
    """First choice drawn by weight; the remaining targets follow, also drawn by weight."""

    def __init__(self, weights: Sequence[float], rng: random.Random | None = None) -> None:
        self.weights = list(weights)
        self._rng = rng or random.Random()

    def order(self, choice: Choice | None = None) -> list[int]:
        keys = [self._rng.random() ** (1.0 / w) for w in self.weights]  # Efraimidis-Spirakis
        return sorted(range(len(keys)), key=keys.__getitem__, reverse=True)


class Fallback:
    """Always the configured order: the first target unless it fails."""

    def __init__(self, n: int) -> None:
        self._order = list(range(n))

    def order(self, choice: Choice | None = None) -> list[int]:
        return list(self._order)


Factory = Callable[[Sequence[float], RoutingConfig], Strategy]
"""``(target weights, routing config) -> Strategy``, one instance per alias."""

STRATEGIES: dict[str, Factory] = {
    "round-robin": lambda w, cfg: RoundRobin(len(w)),
    "weighted": lambda w, cfg: Weighted(w),
    "fallback": lambda w, cfg: Fallback(len(w)),
    "cheapest": lambda w, cfg: Cheapest(),
    "fastest": lambda w, cfg: Fastest(cfg.health.explore_share),
    "least-busy": lambda w, cfg: LeastBusy(),
    "reliable": lambda w, cfg: Reliable(),
}
