"""Plans fill in a key's limits; regions of key, tenant and header only ever narrow."""

from __future__ import annotations

import pytest

from sidecache.config import TenantConfig, from_dict
from sidecache.errors import PermissionDenied
from sidecache.governance.keys import KeyRecord
from sidecache.governance.plans import with_plan
from sidecache.governance.regions import allowed_regions

CFG = from_dict(
    {
        "plans": {"pro": {"models": ["a"], "rpm": 60, "budget": {"usd": 9, "period": "day"}}},
        "tenants": {"acme": {"plan": "pro"}},
    }
)


def key(**kw: object) -> KeyRecord:
    return KeyRecord(id="key_1", prefix="sk-sc-x", tenant=kw.pop("tenant", "t"), **kw)  # type: ignore[arg-type]


def test_a_plan_fills_in_what_the_key_leaves_unset() -> None:
    assert with_plan(key(), CFG) == key()
    own = with_plan(key(plan="pro", rpm=5), CFG)
    assert (own.models, own.rpm, own.budget_usd, own.budget_period) == (["a"], 5, 9.0, "day")
    via_tenant = with_plan(key(tenant="acme"), CFG)
    assert via_tenant.plan == "pro" and via_tenant.rpm == 60
    with pytest.raises(PermissionDenied) as info:
        with_plan(key(plan="gone"), CFG)
    assert info.value.code == "plan_not_found"


def test_regions_intersect_and_the_header_narrows() -> None:
    eu = key(regions=["eu", "ch"])
    tenant = TenantConfig(regions=["eu"])
    assert allowed_regions(None, None, None) is None
    assert allowed_regions(eu, None, None) == {"eu", "ch"}
    assert allowed_regions(eu, tenant, None) == {"eu"}
    assert allowed_regions(None, None, frozenset({"us"})) == {"us"}
    assert allowed_regions(eu, None, frozenset({"ch", "us"})) == {"ch"}
    for k, t, asked in ((eu, None, frozenset({"us"})), (key(regions=["us"]), tenant, None)):
        with pytest.raises(PermissionDenied):
            allowed_regions(k, t, asked)
