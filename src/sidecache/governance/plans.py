"""Plans: a tier's allowlist, rate limits and budget, set once for every key on it.

A key is on the plan it was created with (``sidecache keys create --plan pro``), else on its
tenant's (``[tenants.T] plan``). ``with_plan`` gives the key's effective record: the plan's
values wherever the key sets none of its own (a key's own limits always win), so the rest of
the gate (allowlist, rate limiter, budgets, alerts) needs to know nothing of plans. The plan's
budget and limits are each key's, not shared by the plan's keys; a tenant-wide ceiling is
``limits.tenant_budgets``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from sidecache.config import Config
from sidecache.errors import PermissionDenied
from sidecache.governance.keys import KeyRecord

__all__ = ["plan_of", "with_plan"]


def plan_of(record: KeyRecord, cfg: Config) -> str | None:
    """The plan a key is on: its own, else its tenant's."""
    if record.plan:
        return record.plan
    tenant = cfg.tenants.get(record.tenant)
    return tenant.plan if tenant is not None and tenant.plan else None


def with_plan(record: KeyRecord, cfg: Config) -> KeyRecord:
    """The key's record with its plan's limits filled in where it sets none (403 if the plan
    it names is no longer configured: an unknown plan must not mean "no limits")."""
    name = plan_of(record, cfg)
    if name is None:
        return record
    plan = cfg.plans.get(name)
    if plan is None:
        raise PermissionDenied(
            f"this key's plan {name!r} is not configured on this gateway", code="plan_not_found"
        )
    changes: dict[str, Any] = {}
    if record.models is None and plan.models is not None:
        changes["models"] = list(plan.models)
    if record.rpm is None and plan.rpm is not None:
        changes["rpm"] = plan.rpm
    if record.tpm is None and plan.tpm is not None:
        changes["tpm"] = plan.tpm
    if record.budget_usd is None and plan.budget is not None:
        changes["budget_usd"] = plan.budget.usd
        changes["budget_period"] = plan.budget.period
    if record.plan != name:
        changes["plan"] = name
    return msgspec.structs.replace(record, **changes) if changes else record
