"""``cheapest``: the target where this request is expected to cost least.

Expected cost = prompt tokens x input price + expected completion tokens x output price, from
the pricing table (``[pricing]`` over the bundled list). Targets that cost the same take turns;
targets with no price go last (an unknown price is not a free one).
"""

from __future__ import annotations

from sidecache.routing.choice import Choice, Turns, rank


class Cheapest:
    def __init__(self) -> None:
        self._turns = Turns()

    def order(self, choice: Choice) -> list[int]:
        costs = [choice.cost(i) for i in range(len(choice.targets))]
        # round away float noise, so equal prices tie and take turns
        scores = [None if c is None else round(c, 12) for c in costs]
        return rank(scores, self._turns())
