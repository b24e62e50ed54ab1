"""``[pricing]``, ``[limits]`` and ``[pii]``: what requests cost and what they may do."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from sidecache.config.base import Base, Positive, Seconds


class Price(Base, frozen=True):
    """USD per million tokens."""

    input: Seconds
    output: Seconds
    cached_input: Seconds | None = None
    """USD per million prompt tokens served from the provider's own prompt cache, if it has one."""


class TenantBudget(Base, frozen=True):
    """A spend ceiling shared by every key of one tenant."""

    usd: Annotated[float, Meta(ge=0)]
    period: Literal["day", "month"] = "month"


class LimitsConfig(Base, frozen=True):
    hits_count_tokens: bool = False
    """Cache hits use up the key's tokens-per-minute allowance (they always count as requests)."""
    serve_hits_over_budget: bool = True
    tenant_budgets: dict[str, TenantBudget] = {}
    """Spend ceilings per tenant name, on top of each key's own budget."""
    budget_flush_seconds: Annotated[float, Meta(gt=0)] = 1.0
    """How often recorded spend is written to the state database (and re-read from it)."""
    completion_estimate_tokens: Positive = 1024
    """Completion tokens a miss holds budget for when it sets no ``max_tokens`` and its model
    alias has not answered yet (after that: the largest of its recent answers)."""
    on_redis_down: Literal["open", "closed"] = "open"
    """With ``governance.store = "redis"``, while Redis does not answer: ``open`` enforces rate
    limits per replica and lets each replica spend its share of what was left of a budget (a
    budget near its end refuses); ``closed`` refuses (429) requests of keys that have a limit or
    a budget until Redis answers again."""


class PIIConfig(Base, frozen=True):
    enabled: bool = False
    redact_upstream: bool = False
    never_cache: bool = False
    kinds: list[Literal["email", "phone", "card", "iban", "ip", "secret"]] = []
    """Which kinds to detect; empty: all of them."""
