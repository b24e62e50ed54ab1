"""``[tenants.T]`` and ``[plans.NAME]``: who a caller is beyond its key, and its tier.

A plan is the limits of a tier set once: every key on the plan (its own ``--plan``, or its
tenant's ``plan``) gets the plan's allowlist, rate limits and budget wherever the key sets none
of its own. A tenant can also be pinned to regions, so none of its keys' requests ever reaches
a target outside them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from msgspec import Meta

from sidecache.config.base import Base, Positive
from sidecache.config.governance import TenantBudget
from sidecache.config.models import Label
from sidecache.errors import ConfigError

Threshold = Annotated[float, Meta(gt=0, le=10)]
"""A share of a budget: 0.8 is 80%."""


class PlanConfig(Base, frozen=True):
    """The limits of one tier, applied to each key on it (a key's own values win)."""

    models: list[str] | None = None
    """Model aliases the plan's keys may call; unset: all."""
    rpm: Positive | None = None
    tpm: Positive | None = None
    budget: TenantBudget | None = None
    """``{usd = 50, period = "month"}``: each key's own spend ceiling."""
    alert_thresholds: list[Threshold] | None = None
    """Budget alert thresholds for the plan's keys; unset: ``[alerts] thresholds``."""


class TenantConfig(Base, frozen=True):
    """What holds for every key of one tenant."""

    plan: str = ""
    """The plan of the tenant's keys that name none themselves."""
    regions: list[Label] = []
    """Only targets in these regions serve the tenant's requests; empty: any target."""
    alert_thresholds: list[Threshold] | None = None
    """Budget alert thresholds for the tenant's budget and keys; unset: the plan's, else
    ``[alerts] thresholds``."""


def check_tenants(
    tenants: dict[str, TenantConfig], plans: dict[str, PlanConfig], aliases: Iterable[str]
) -> None:
    """Plans named by tenants exist; plan allowlists name configured aliases."""
    known = set(aliases)
    for name, tenant in tenants.items():
        if tenant.plan and tenant.plan not in plans:
            raise ConfigError(
                f"config field tenants.{name}.plan: plan {tenant.plan!r} is not defined under"
                f" [plans] ({', '.join(sorted(plans)) or 'none defined'})"
            )
    if not known:
        return  # pass-through mode: model names are not known in advance
    for name, plan in plans.items():
        unknown = sorted(set(plan.models or ()) - known)
        if unknown:
            raise ConfigError(
                f"config field plans.{name}.models: {', '.join(unknown)} is not a model alias"
            )
