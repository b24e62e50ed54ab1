"""The false-hit estimator: the lowest threshold likely enough to meet the target, the
configured one without data, feedback as a floor under the estimate."""

from __future__ import annotations

import numpy as np
import pytest

from sidecache.quality.estimator import CONFIDENCE, at, choose, prob_at_most, quantile


def stream(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Similarities on [0.70, 1.0], wrong often under 0.85 and rarely above."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.70, 1.0, n)
    p = np.where(s < 0.85, 0.30, 0.002)
    return s, (rng.random(n) < p).astype(np.int64)


def test_the_posterior_matches_known_values() -> None:
    # Beta(0.5, 0.5): P(p <= x) = 2/pi * asin(sqrt(x))
    assert prob_at_most(0.02, 0, 0) == pytest.approx(2 / np.pi * np.arcsin(np.sqrt(0.02)))
    assert prob_at_most(0.5, 3, 6) == pytest.approx(0.5, abs=1e-9)  # symmetric
    assert prob_at_most(0.02, 0, 300) > 0.95 > prob_at_most(0.02, 4, 100)
    q = quantile(0.9, 4, 100)
    assert prob_at_most(q, 4, 100) == pytest.approx(0.9, abs=1e-6)


def test_no_data_keeps_the_configured_threshold() -> None:
    est = choose(np.array([]), np.array([]), target=0.02, floor=0.7, configured=0.8)
    assert est.threshold == 0.8 and est.n == 0 and est.rate is None and not est.certified


def test_enough_data_certifies_the_lowest_threshold_that_meets_the_target() -> None:
    s, y = stream(2000)
    est = choose(s, y, target=0.02, floor=0.70, configured=0.70)
    assert est.certified and est.confidence >= CONFIDENCE
    assert 0.85 <= est.threshold <= 0.88
    below = at(s, y, round(est.threshold - 0.005, 3), target=0.02)
    assert not below.certified  # one step lower would not meet it
    assert est.lower is not None and est.upper is not None
    assert est.lower <= (est.rate or 0) <= est.upper


def test_little_data_moves_up_past_what_was_wrong_never_below_the_configured() -> None:
    s, y = stream(40, seed=3)
    up = choose(s, y, target=0.02, floor=0.70, configured=0.70)
    assert not up.certified and up.threshold > max(s[y == 1])
    held = choose(s, y, target=0.02, floor=0.50, configured=0.95)
    assert held.threshold >= 0.95


def test_it_goes_down_to_the_floor_only_with_evidence() -> None:
    rng = np.random.default_rng(1)
    s = rng.uniform(0.60, 1.0, 3000)
    y = np.zeros(3000, dtype=np.int64)  # nothing is ever wrong
    assert choose(s, y, target=0.02, floor=0.60, configured=0.90).threshold == 0.60
    assert choose(s[:5], y[:5], target=0.02, floor=0.60, configured=0.90).threshold >= 0.90


def test_when_everything_observed_was_wrong_it_goes_above_all_of_it() -> None:
    s = np.array([0.80, 0.85, 0.83])
    y = np.array([1, 1, 1])
    est = choose(s, y, target=0.05, floor=0.5, configured=0.5)
    assert est.threshold == 0.855 and not est.certified


def test_bad_feedback_is_a_floor_under_the_estimate() -> None:
    s, y = stream(2000)
    assert choose(s, y, target=0.02, floor=0.70, configured=0.70).threshold < 0.95
    served = np.full(100, 0.95)
    bad = np.full(10, 0.95)  # a tenth of the served hits at 0.95 were reported bad
    est = choose(s, y, target=0.02, floor=0.70, configured=0.70, served=served, bad=bad)
    assert est.threshold > 0.95  # no threshold at or under 0.95 can meet 0.02 any more
    shown = at(s, y, 0.95, served, bad)
    assert shown.rate is not None and shown.rate >= 0.10


@pytest.mark.parametrize("confidence", [0.5, 0.95])
def test_more_confidence_asks_for_a_higher_threshold(confidence: float) -> None:
    s, y = stream(800, seed=5)
    base = choose(s, y, target=0.02, floor=0.7, configured=0.7).threshold
    other = choose(s, y, target=0.02, floor=0.7, configured=0.7, confidence=confidence).threshold
    assert (other <= base) if confidence < CONFIDENCE else (other >= base)
