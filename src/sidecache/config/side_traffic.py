"""``[side_traffic]`` and the per-alias fields of side traffic: requests the gateway sends after
the client's answer is done, that the client never sees and never pays for.

Two uses share the mechanism: a *shadow* target mirrors a sampled share of an alias's misses
(to compare another model or provider with the one in use), and *audits* ask the alias's own
targets a sampled share of its semantic hits again (to learn how often the cache serves a wrong
answer, and to move the alias's threshold to a target error rate). The per-alias fields live on
``ModelAlias``; their types and the global limits are here.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from sidecache.config.base import Base, Positive, Unit


class Shadow(Base, frozen=True):
    """``shadow = {target = "provider/model", rate = 0.1}`` on a model alias."""

    target: str
    """The ``provider/upstream-model`` that receives the mirrored requests."""
    rate: Unit = 0.1
    """Share of the alias's misses mirrored (0 to 1)."""


ErrorRate = Annotated[float, Meta(gt=0, lt=1)]


class SideTrafficConfig(Base, frozen=True):
    """Limits of the background lane every side call runs in."""

    max_in_flight: Positive = 8
    """Side calls (shadow calls, audits, answer comparisons) running at once; more are dropped
    and counted, never queued, so side traffic cannot hold requests' memory or connections."""
    timeout_seconds: Annotated[float, Meta(gt=0)] = 120.0
    """A side call still running after this long is cancelled (and counted as an error)."""
