"""``[models.ALIAS]`` and ``[routing]``: what clients ask for and how a target is chosen."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from sidecache.config.base import Base, Positive, Seconds, Unit
from sidecache.config.side_traffic import ErrorRate, Shadow


class Target(Base, frozen=True):
    """``provider/upstream-model`` with an optional weight for the weighted strategy."""

    target: str
    weight: Annotated[float, Meta(gt=0)] = 1.0


class ModelAlias(Base, frozen=True):
    """What a client asks for; which upstream targets serve it and how to pick one."""

    targets: Annotated[list[Target], Meta(min_length=1)]
    strategy: Literal["round-robin", "weighted", "fallback"] = "round-robin"
    threshold: Unit | None = None
    verifier: bool | None = None
    cache: bool = True
    # Side traffic (config/side_traffic.py): a shadow target, audits of hits, adaptive threshold.
    shadow: Shadow | None = None
    audit_rate: Unit = 0.0
    """Share of semantic-hit lookups audited after the client's answer (0: none)."""
    audit_budget_usd: Annotated[float, Meta(ge=0)] = 1.0
    """Most the alias's audits may spend per UTC day (apart from every tenant's budget)."""
    audit_agree: Unit = 0.85
    """Cosine of two answers' embeddings at or above which an audit calls them the same."""
    target_error_rate: ErrorRate | None = None
    """Wrong-hit rate the effective threshold is moved to hold; None: the threshold is fixed."""
    min_threshold: Unit | None = None
    """Lowest threshold the alias may move to; None: its configured threshold."""


class RetryConfig(Base, frozen=True):
    """Retries across targets before the first byte reaches the client."""

    max_attempts: Positive = 3
    backoff_base: Seconds = 0.05
    backoff_max: Seconds = 2.0
    retry_after_max: Seconds = 30.0


class BreakerConfig(Base, frozen=True):
    """A target's circuit opens after this many consecutive failures, for a cool-down."""

    failure_threshold: Positive = 5
    cooldown_seconds: Seconds = 30.0


class RoutingConfig(Base, frozen=True):
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
