"""A/B splits: which variant of an alias a caller gets, by share, the same one every time.

A caller (its key, or the request's ``user`` field) is hashed with the alias to a point in
[0, 1); the variants' shares cut that interval. So one caller always lands on the same variant
(its answers stay comparable and its experience stable), callers spread by share, and changing
one alias's split does not reshuffle another's. A request with nobody to stick to is placed at
random.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Arm:
    label: str
    target: int
    """Index of the variant's target in the route."""
    share: float


class Split:
    def __init__(self, alias: str, arms: Sequence[Arm], rng: random.Random | None = None) -> None:
        self.alias = alias
        self.arms = list(arms)
        total = sum(a.share for a in self.arms)
        self._bounds: list[float] = []
        acc = 0.0
        for a in self.arms:
            acc += a.share / total
            self._bounds.append(acc)
        self._rng = rng or random.Random()

    def point(self, who: str | None) -> float:
        """Where a caller falls in [0, 1)."""
        if who is None:
            return self._rng.random()
        digest = hashlib.sha256(f"{self.alias}\0{who}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64

    def assign(self, who: str | None) -> Arm:
        i = bisect.bisect_right(self._bounds, self.point(who))
        return self.arms[min(i, len(self.arms) - 1)]
