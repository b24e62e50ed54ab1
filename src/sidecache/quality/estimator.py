"""The false-hit rate as a function of the threshold, and the threshold that holds a target.

The data are *observations*: lookups sampled at the alias's ``audit_rate`` whose best verified
candidate had similarity ``s`` (at or above the floor, ``min_threshold``), each labelled wrong
or right by comparing answers: an audited hit (served, then asked again upstream) or a near miss
(not served, so the client's fresh answer is compared with the candidate's stored one, at no
upstream cost). Because the sample is drawn before anyone knows whether the candidate will be
served, it is a uniform sample of lookups whatever the threshold was at the time, so the ``k``
wrong among the ``n`` observations with ``s >= t`` tell the false-hit rate among the hits a
threshold ``t`` would serve, for every ``t`` above the floor, not only the current one.

For each ``t`` on a grid the rate has a Beta posterior (Jeffreys prior: ``k + 1/2`` wrong,
``n - k + 1/2`` right), and ``choose`` takes the lowest ``t`` where the posterior probability
that the rate is at or below the target reaches ``CONFIDENCE``. Until one does (early on, or
when the target is out of reach), the threshold goes to where that probability is highest,
never below the configured threshold: a region where everything observed was wrong loses to
one nobody observed yet, and both lose to one with many right observations.

Bad-hit feedback is not a random sample (people report what is wrong, rarely what is right), so
it only sets a floor under the estimate: at least ``bad(t)`` of the ``served(t)`` hits at or
above ``t`` were wrong; a ``t`` where that share passes the target cannot be chosen.

``benchmarks/adaptive_threshold.py`` chose this rule by simulation on labelled lookups, against
a Wilson-bound rule and a logistic model of the rate on similarity; see README for the figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CONFIDENCE", "STEP", "Estimate", "at", "choose", "prob_at_most", "quantile"]

CONFIDENCE = 0.75
"""Posterior probability that the false-hit rate at the chosen threshold is at most the target.
Chosen by ``benchmarks/adaptive_threshold.py`` (see README)."""
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
    """The 10% and 90% posterior quantiles (an 80% credible interval)."""
    confidence: float
    """Posterior probability that the rate is at most the target (0 without a target)."""
    certified: bool
    """``confidence`` reaches ``CONFIDENCE``."""


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-12:
            break
    return h


def _beta_cdf(x: float, a: float, b: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def prob_at_most(target: float, wrong: int, n: int) -> float:
    """Posterior probability (Jeffreys prior) that a rate with ``wrong`` of ``n`` is <= target."""
    return _beta_cdf(target, wrong + 0.5, n - wrong + 0.5)


def quantile(q: float, wrong: int, n: int) -> float:
    """The ``q`` quantile of that posterior (by bisection)."""
    lo, hi = 0.0, 1.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if _beta_cdf(mid, wrong + 0.5, n - wrong + 0.5) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _grid(floor: float) -> np.ndarray:
    start = math.ceil(round(floor / STEP, 6)) * STEP
    return np.round(np.arange(start, 1.0 + 1e-9, STEP), 3)


def _known_bad(t: float, served: np.ndarray | None, bad: np.ndarray | None) -> float:
    """Share of served hits at or above ``t`` that feedback called bad (a lower bound)."""
    return float(_known_bad_at(np.array([t]), served, bad)[0])


def _known_bad_at(
    grid: np.ndarray, served: np.ndarray | None, bad: np.ndarray | None
) -> np.ndarray:
    """``_known_bad`` for every threshold of ``grid`` at once (two sorts, two searches)."""
    if served is None or bad is None or served.size == 0 or bad.size == 0:
        return np.zeros(len(grid))
    n = served.size - np.searchsorted(np.sort(served), grid - 1e-9, side="left")
    k = bad.size - np.searchsorted(np.sort(bad), grid - 1e-9, side="left")
    return np.where(n > 0, k / np.maximum(n, 1), 0.0)


def _probability(target: float, k: int, n: int, known: float) -> float:
    return 0.0 if known > target else prob_at_most(target, k, n)


def at(
    similarity: np.ndarray,
    wrong: np.ndarray,
    threshold: float,
    served: np.ndarray | None = None,
    bad: np.ndarray | None = None,
    target: float | None = None,
    confidence: float = CONFIDENCE,
) -> Estimate:
    """What the observations say of one threshold (for display at the current one)."""
    mask = similarity >= threshold - 1e-9
    n, k = int(mask.sum()), int(wrong[mask].sum())
    known = _known_bad(threshold, served, bad)
    p = _probability(target, k, n, known) if target is not None else 0.0
    if n == 0:
        return Estimate(threshold, 0, 0, None, None, None, p, False)
    lower = max(quantile(0.1, k, n), known)
    upper = max(quantile(0.9, k, n), known)
    return Estimate(threshold, n, k, max(k / n, known), lower, upper, p, p >= confidence)


def choose(
    similarity: np.ndarray,
    wrong: np.ndarray,
    *,
    target: float,
    floor: float,
    configured: float,
    served: np.ndarray | None = None,
    bad: np.ndarray | None = None,
    confidence: float = CONFIDENCE,
) -> Estimate:
    """The lowest threshold on the grid above ``floor`` that meets ``target`` with
    ``confidence``; else the one most likely to meet it, not below ``configured``.

    ``similarity``/``wrong``: the observations; ``served``/``bad``: similarities of the served
    semantic hits and of those that feedback called bad (optional).
    """
    if similarity.size == 0:
        return at(similarity, wrong, configured, served, bad, target, confidence)
    order = np.argsort(-similarity)
    s_sorted = similarity[order]
    cum_wrong = np.cumsum(wrong[order])
    grid = _grid(floor)
    # observations at or above each t: s sorted descending, so a count is a search away
    counts = np.searchsorted(-s_sorted, -grid + 1e-9, side="right")
    known = _known_bad_at(grid, served, bad)
    memo: dict[tuple[int, int, float], float] = {}  # neighbouring thresholds share counts
    probs = np.empty(len(grid))
    for i, (n, kb) in enumerate(zip(counts, known, strict=True)):
        key = (int(cum_wrong[n - 1]) if n else 0, int(n), float(kb))
        if key not in memo:
            memo[key] = _probability(target, *key)
        probs[i] = memo[key]
    ok = np.flatnonzero(probs >= confidence)
    likeliest = max(configured, float(grid[int(np.argmax(probs))]))
    chosen = float(grid[ok[0]]) if ok.size else likeliest
    return at(similarity, wrong, chosen, served, bad, target, confidence)
