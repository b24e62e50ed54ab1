"""``[models.ALIAS]`` and ``[routing]``: what clients ask for and how a target is chosen."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from sidecache.config.base import Base, Positive, Seconds, Unit


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
