"""What routing knows about one request, and what a strategy sees when it orders targets.

``RouteRequest`` is filled in by the pipeline (regions the caller may use, the A/B variant's
target, the request's estimated size); ``Choice`` adds the alias's targets and prices for the
strategy. Strategies only rank: the router walks their order and skips targets that may not or
cannot take the request (region, circuit, Retry-After, upstream limits).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sidecache.routing.health import TargetHealth

PriceFn = Callable[[str, int, int], float | None]
"""``(upstream_model, prompt_tokens, completion_tokens) -> USD``, ``None`` without a price."""


@dataclass
class RouteRequest:
    """The facts of one request that routing needs."""

    regions: frozenset[str] | None = None
    """Only targets in these regions may serve it; ``None``: any target."""
    first: int | None = None
    """Index of the target to try first (the request's A/B variant)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    """Expected completion size (``max_tokens``, else what the alias answered lately)."""
    stream: bool = False

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Candidate(Protocol):
    """A target as strategies see it (``router.TargetState`` is one)."""

    @property
    def upstream_model(self) -> str: ...

    @property
    def health(self) -> TargetHealth: ...


@dataclass
class Choice:
    """One request's view of an alias's targets."""

    targets: Sequence[Candidate]
    request: RouteRequest
    price: PriceFn | None = None

    def cost(self, i: int) -> float | None:
        """Expected USD of this request on target ``i``; ``None`` without a price."""
        if self.price is None:
            return None
        r = self.request
        return self.price(self.targets[i].upstream_model, r.prompt_tokens, r.completion_tokens)


def rank(scores: Sequence[float | None], turn: int, *, unknown_first: bool = False) -> list[int]:
    """Indices by ascending score; equal scores take turns (the ``turn``-th request starts at
    another one of them); unknown scores (``None``) go last, or first with ``unknown_first``."""
    known = sorted({s for s in scores if s is not None})
    groups = [[i for i, s in enumerate(scores) if s == value] for value in known]
    missing = [i for i, s in enumerate(scores) if s is None]
    if missing and unknown_first:
        groups.insert(0, missing)
    elif missing:
        groups.append(missing)
    order: list[int] = []
    for group in groups:
        k = turn % len(group)
        order += group[k:] + group[:k]
    return order


class Turns:
    """A counter for ``rank``'s turn-taking among equals (one per strategy instance)."""

    def __init__(self) -> None:
        self._count = itertools.count()

    def __call__(self) -> int:
        return next(self._count)
