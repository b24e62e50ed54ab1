"""Per-alias thresholds that follow the observed false-hit rate to a target.

Each alias keeps its observations (see ``estimator``), the similarities of the semantic hits it
served and of those feedback called bad, and its *effective* threshold: the configured one
until there is data, then the one ``estimator.choose`` picks, never below the floor
(``min_threshold``, by default the configured threshold). A change is logged, kept in a history
(shown in ``/stats`` and on the dashboard) and written to the journal.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from sidecache.config import Config, ModelAlias
from sidecache.quality import estimator
from sidecache.quality.estimator import Estimate

__all__ = ["AliasPolicy", "AliasThreshold", "policy_of"]

log = logging.getLogger("sidecache.quality")

HISTORY = 200
"""Threshold changes kept per alias for ``/stats``."""
SERVED_KEPT = 50_000
"""Similarities of served semantic hits kept per alias (the denominator of the feedback bound)."""


@dataclass(frozen=True)
class AliasPolicy:
    """An alias's side-traffic settings, resolved against the cache defaults."""

    configured: float
    floor: float
    target: float | None
    audit_rate: float
    audit_agree: float
    audit_budget_usd: float

    @property
    def adaptive(self) -> bool:
        return self.target is not None


def policy_of(cfg: Config, spec: ModelAlias | None) -> AliasPolicy:
    configured = cfg.cache.threshold
    if spec is None:
        return AliasPolicy(configured, configured, None, 0.0, 0.85, 0.0)
    if spec.threshold is not None:
        configured = spec.threshold
    floor = spec.min_threshold if spec.min_threshold is not None else configured
    return AliasPolicy(
        configured,
        floor,
        spec.target_error_rate,
        spec.audit_rate,
        spec.audit_agree,
        spec.audit_budget_usd,
    )


@dataclass(frozen=True)
class Inputs:
    """The estimator's data at one moment: observations, served hits, bad verdicts."""

    similarity: list[float]
    wrong: list[bool]
    served: list[float]
    bad: list[float]


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(x, 5)


class AliasThreshold:
    """One alias's observations and effective threshold."""

    def __init__(self, alias: str, policy: AliasPolicy) -> None:
        self.alias = alias
        self.policy = policy
        self.observations: deque[tuple[float, float, bool, str]] = deque(maxlen=5000)
        self.served: deque[float] = deque(maxlen=SERVED_KEPT)
        self.bad: deque[float] = deque(maxlen=SERVED_KEPT)
        self.effective = policy.configured
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.changes = 0
        """Changes since start (``history`` also holds earlier ones, from the journal)."""
        self.estimate = Estimate(policy.configured, 0, 0, None, None, None, 0.0, False)

    def observe(self, similarity: float, wrong: bool, source: str, t: float | None = None) -> None:
        self.observations.append((time.time() if t is None else t, similarity, wrong, source))

    def inputs(self) -> Inputs:
        """A copy of what the estimate needs, taken on the event loop (cheap), so that the
        estimate itself can run on another thread."""
        return Inputs(
            [o[1] for o in self.observations],
            [o[2] for o in self.observations],
            list(self.served),
            list(self.bad),
        )

    def estimate_from(self, inputs: Inputs) -> Estimate:
        """The estimate (and, with a target, the threshold chosen): pure, any thread."""
        s = np.asarray(inputs.similarity, dtype=np.float64)
        y = np.asarray(inputs.wrong, dtype=np.int64)
        served = np.asarray(inputs.served, dtype=np.float64)
        bad = np.asarray(inputs.bad, dtype=np.float64)
        p = self.policy
        if p.target is None:  # fixed threshold: the estimate is only shown
            return estimator.at(s, y, p.configured, served, bad)
        return estimator.choose(
            s, y, target=p.target, floor=p.floor, configured=p.configured, served=served, bad=bad
        )

    def refresh(self) -> dict[str, Any] | None:
        """Re-estimate here and now (at start; the desk does it off the event loop)."""
        return self.apply(self.estimate_from(self.inputs()))

    def apply(self, est: Estimate) -> dict[str, Any] | None:
        """Take a new estimate; returns the change (also kept in ``history``) if the threshold
        moved."""
        self.estimate = est
        p = self.policy
        if p.target is None:
            return None
        if abs(est.threshold - self.effective) < estimator.STEP / 2:
            return None
        chance = f"{est.confidence:.0%} likely at or below the target {p.target:g}"
        if est.certified:
            reason = f"the lowest threshold whose false-hit rate is {chance}"
        elif est.threshold == p.configured and est.n == 0:
            reason = "no observation says more than the configured threshold"
        else:
            reason = (
                f"no threshold is {estimator.CONFIDENCE:.0%} likely to meet the target yet;"
                f" this one is the likeliest ({chance})"
            )
        change = {
            "t": time.time(),
            "threshold": est.threshold,
            "previous": self.effective,
            "rate": _rounded(est.rate),
            "upper": _rounded(est.upper),
            "n": est.n,
            "reason": reason,
        }
        log.info(
            "threshold of %s: %.3f -> %.3f (false-hit rate %s, upper bound %s, %d observations):"
            " %s",
            self.alias,
            self.effective,
            est.threshold,
            "-" if est.rate is None else f"{est.rate:.4f}",
            "-" if est.upper is None else f"{est.upper:.4f}",
            est.n,
            reason,
        )
        self.effective = est.threshold
        self.history.append(change)
        self.changes += 1
        return change

    def snapshot(self) -> dict[str, Any]:
        est = self.estimate
        sources: dict[str, int] = {}
        for o in self.observations:
            sources[o[3]] = sources.get(o[3], 0) + 1
        return {
            "configured_threshold": self.policy.configured,
            "min_threshold": self.policy.floor,
            "target_error_rate": self.policy.target,
            "effective_threshold": self.effective,
            "false_hit_rate": _rounded(est.rate),
            "false_hit_rate_lower": _rounded(est.lower),
            "false_hit_rate_upper": _rounded(est.upper),
            "target_met_probability": round(est.confidence, 4),
            "required_probability": estimator.CONFIDENCE,
            "certified": est.certified,
            "observations": len(self.observations),
            "observations_at_threshold": est.n,
            "wrong_at_threshold": est.wrong,
            "observations_by_source": sources,
            "threshold_changes": self.changes,
            "threshold_history": list(self.history),
        }
