"""The false-hit rate as a function of the threshold, and the threshold that holds a target.

The data are *observations*: lookups sampled at the alias's ``audit_rate`` whose best verified
candidate had similarity ``s`` (at or above the floor, ``min_threshold``), each labelled wrong
or right by comparing answers: an audited hit (served, then asked again upstream) or a near miss
(not served, so the client's fresh answer is compared with the candidate's stored one, at no
upstream cost). Because the sample is drawn before anyone knows whether the candidate will be
served, it is a uniform sample of lookups whatever the threshold was at the time, so the share
of wrong ones among observations with ``s >= t`` estimates the false-hit rate among the hits a
threshold ``t`` would serve, for every ``t`` above the floor, not only the current one.

``choose`` picks the lowest threshold whose one-sided upper confidence bound (Wilson score, at
``CONFIDENCE``) is at or below the target. Bad-hit feedback is not a random sample (people
report what is wrong, rarely what is right), so it only sets a floor under the estimate: at
least ``bad(t)`` of the ``served(t)`` hits at or above ``t`` were wrong. With no observation the
configured threshold holds; with some but none certifying the target, the threshold goes to
where the bound is lowest, never below the configured one. ``benchmarks/adaptive_threshold.py``
compared this with a logistic model of the wrong rate on similarity (bootstrapped bound); see
README for the figures and why this one was kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CONFIDENCE", "STEP", "Estimate", "choose", "wilson"]

CONFIDENCE = 0.90
"""One-sided confidence that the false-hit rate at the chosen threshold is at most the target."""
_Z = 1.2815515655446004  # the 0.90 quantile of the standard normal
STEP = 0.005
"""Thresholds are chosen on this grid, so tiny noises in the data do not move them."""


@dataclass(frozen=True)
class Estimate:
    """The threshold chosen and what is known of the false-hit rate at it."""

    threshold: float
    n: int
    """Observations at or above ``threshold``."""
    wrong: int
    rate: float | None
    """Estimated false-hit rate among hits at ``threshold`` (None without observations)."""
    lower: float | None
    upper: float | None
    """One-sided 90% bounds (Wilson score; together an 80% interval): ``upper`` is the bound
    the threshold is chosen on."""
    certified: bool
    """The one-sided bound at ``CONFIDENCE`` is at or below the target."""


def wilson(wrong: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion; ``(0, 1)`` without data."""
    if n <= 0:
        return 0.0, 1.0
    p = wrong / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _grid(floor: float) -> np.ndarray:
    start = math.ceil(round(floor / STEP, 6)) * STEP
    return np.round(np.arange(start, 1.0 + 1e-9, STEP), 3)


def at(
    similarity: np.ndarray,
    wrong: np.ndarray,
    threshold: float,
    served: np.ndarray | None = None,
    bad: np.ndarray | None = None,
    target: float | None = None,
) -> Estimate:
    """What the observations say of one threshold (for display at the current one)."""
    mask = similarity >= threshold - 1e-9
    n, k = int(mask.sum()), int(wrong[mask].sum())
    known = _known_bad(threshold, served, bad)
    if n == 0:
        return Estimate(threshold, 0, 0, None, None, None, False)
    lo, hi = wilson(k, n, _Z)
    upper = max(hi, known)
    certified = target is not None and upper <= target
    return Estimate(threshold, n, k, max(k / n, known), max(lo, known), upper, certified)


def _known_bad(t: float, served: np.ndarray | None, bad: np.ndarray | None) -> float:
    """Share of served hits at or above ``t`` that feedback called bad (a lower bound)."""
    if served is None or bad is None or served.size == 0:
        return 0.0
    n = int((served >= t - 1e-9).sum())
    return int((bad >= t - 1e-9).sum()) / n if n else 0.0


def choose(
    similarity: np.ndarray,
    wrong: np.ndarray,
    *,
    target: float,
    floor: float,
    configured: float,
    served: np.ndarray | None = None,
    bad: np.ndarray | None = None,
) -> Estimate:
    """The lowest threshold on the grid above ``floor`` whose upper bound meets ``target``.

    ``similarity``/``wrong``: the observations; ``served``/``bad``: similarities of the served
    semantic hits and of those that feedback called bad (optional).
    """
    if similarity.size == 0:
        return at(similarity, wrong, configured, served, bad, target)
    order = np.argsort(-similarity)
    s_sorted = similarity[order]
    cum_wrong = np.cumsum(wrong[order])
    grid = _grid(floor)
    # observations at or above each t: s sorted descending, so a count is a search away
    counts = np.searchsorted(-s_sorted, -grid + 1e-9, side="right")
    bounds = np.ones(len(grid))
    for i, (t, n) in enumerate(zip(grid, counts, strict=True)):
        if n:
            bounds[i] = max(
                wilson(int(cum_wrong[n - 1]), int(n), _Z)[1], _known_bad(t, served, bad)
            )
    ok = np.flatnonzero(bounds <= target)
    lowest_bound = max(configured, float(grid[int(np.argmin(bounds))]))
    chosen = float(grid[ok[0]]) if ok.size else lowest_bound
    return at(similarity, wrong, chosen, served, bad, target)
