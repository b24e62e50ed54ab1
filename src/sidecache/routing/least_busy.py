"""``least-busy``: the target with the fewest requests in flight from this gateway.

Counts include streams still sending and every alias that shares the target; equally busy
targets take turns.
"""

from __future__ import annotations

from sidecache.routing.choice import Choice, Turns, rank


class LeastBusy:
    def __init__(self) -> None:
        self._turns = Turns()

    def order(self, choice: Choice) -> list[int]:
        return rank([float(t.health.in_flight) for t in choice.targets], self._turns())
