"""Target choice: the order in which an alias's targets are tried for one request.

Each strategy is a small class with ``order(n) -> list[int]``; the router walks that order,
skipping targets whose circuit is open, so fallback falls out of the same loop.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from typing import Protocol


class Strategy(Protocol):
    def order(self) -> list[int]:
        """Indices of the targets, first choice first."""
        ...


class RoundRobin:
    """Each request starts one target further along; the rest follow as fallbacks."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._next = itertools.count()

    def order(self) -> list[int]:
        start = next(self._next) % self.n
        return [(start + i) % self.n for i in range(self.n)]


class Weighted:
    """First choice drawn by weight; the remaining targets follow, also drawn by weight."""

    def __init__(self, weights: Sequence[float], rng: random.Random | None = None) -> None:
        self.weights = list(weights)
        self._rng = rng or random.Random()

    def order(self) -> list[int]:
        keys = [self._rng.random() ** (1.0 / w) for w in self.weights]  # Efraimidis-Spirakis
        return sorted(range(len(keys)), key=keys.__getitem__, reverse=True)


class Fallback:
    """Always the configured order: the first target unless it fails."""

    def __init__(self, n: int) -> None:
        self._order = list(range(n))

    def order(self) -> list[int]:
        return list(self._order)


STRATEGIES: dict[str, Callable[[Sequence[float]], Strategy]] = {
    "round-robin": lambda w: RoundRobin(len(w)),
    "weighted": lambda w: Weighted(w),
    "fallback": lambda w: Fallback(len(w)),
}
