from __future__ import annotations

import asyncio
import calendar
import sqlite3
from pathlib import Path

import pytest

from sidecache.config import LimitsConfig, TenantBudget
from sidecache.errors import BudgetExceeded
from sidecache.governance.budget import BudgetTracker, period_key, seconds_until_rollover
from sidecache.governance.keys import KeyRecord

NOON = calendar.timegm((2026, 11, 23, 12, 0, 0))  # Monday 23 Nov 2026, 12:00 UTC


def key(budget: float | None = 1.0, period: str | None = "day", tenant: str = "acme") -> KeyRecord:
    return KeyRecord(
        id="key_1",
        prefix="sk-sc-abcdef",
        tenant=tenant,
        budget_usd=budget,
        budget_period=period,  # type: ignore[arg-type]
    )


def test_periods_and_rollover() -> None:
    assert period_key("day", NOON) == "2026-11-23"
    assert period_key("month", NOON) == "2026-11"
    assert seconds_until_rollover("day", NOON) == 12 * 3600
    assert seconds_until_rollover("month", NOON) == (7 * 24 + 12) * 3600
    dec = calendar.timegm((2026, 12, 31, 23, 0, 0))
    assert seconds_until_rollover("month", dec) == 3600
    assert seconds_until_rollover("day", dec) == 3600


def test_key_budget_refuses_at_the_limit(tmp_path: Path) -> None:
    bt = BudgetTracker(tmp_path)
    rec = key(1.0, "day")
    bt.check(rec, now=NOON)
    bt.record("key_1", "acme", 0.6, now=NOON)
    bt.check(rec, now=NOON)
    bt.record("key_1", "acme", 0.4, now=NOON)
    with pytest.raises(BudgetExceeded) as exc:
        bt.check(rec, now=NOON)
    err = exc.value
    assert err.status == 429 and err.code == "budget_exceeded"
    assert err.retry_after == 12 * 3600
    assert "daily budget of $1.00" in err.message
    # the next UTC day starts afresh
    bt.check(rec, now=NOON + 12 * 3600)
    assert bt.spent("key", "key_1", "day", now=NOON) == pytest.approx(1.0)
    assert bt.spent("tenant", "acme", "month", now=NOON) == pytest.approx(1.0)
    bt.close()


def test_keys_without_budget_and_zero_budget(tmp_path: Path) -> None:
    bt = BudgetTracker(tmp_path)
    bt.record("key_1", "acme", 100.0, now=NOON)
    bt.check(key(None, None), now=NOON)
    with pytest.raises(BudgetExceeded):
        BudgetTracker(tmp_path / "other").check(key(0.0, "month"), now=NOON)
    bt.close()


def test_monthly_budget(tmp_path: Path) -> None:
    bt = BudgetTracker(tmp_path)
    rec = key(2.0, "month")
    bt.record("key_1", "acme", 1.5, now=NOON - 10 * 86400)
    bt.record("key_1", "acme", 0.5, now=NOON)
    with pytest.raises(BudgetExceeded) as exc:
        bt.check(rec, now=NOON)
    assert exc.value.retry_after == seconds_until_rollover("month", NOON)
    bt.close()


def test_tenant_budget(tmp_path: Path) -> None:
    limits = LimitsConfig(tenant_budgets={"acme": TenantBudget(usd=3.0, period="day")})
    bt = BudgetTracker(tmp_path, limits)
    bt.record("key_a", "acme", 2.0, now=NOON)
    bt.record("key_b", "acme", 1.0, now=NOON)
    with pytest.raises(BudgetExceeded, match="tenant 'acme'"):
        bt.check(key(None, None, tenant="acme"), now=NOON)
    bt.check(key(None, None, tenant="globex"), now=NOON)
    bt.close()


def test_spend_is_written_on_flush_and_survives_restart(tmp_path: Path) -> None:
    bt = BudgetTracker(tmp_path)
    bt.record("key_1", "acme", 0.25)
    rows = sqlite3.connect(tmp_path / "state.db").execute("SELECT COUNT(*) FROM spend").fetchone()
    assert rows[0] == 0  # record() never touches the database
    bt.flush()
    bt.record("key_1", "acme", 0.25)
    bt.close()  # close flushes what is pending
    again = BudgetTracker(tmp_path)
    assert again.spent("key", "key_1", "day") == pytest.approx(0.5)
    assert again.spent("key", "key_1", "month") == pytest.approx(0.5)
    assert again.spent("tenant", "acme", "day") == pytest.approx(0.5)
    again.close()


def test_two_gateways_converge_on_flush(tmp_path: Path) -> None:
    a = BudgetTracker(tmp_path)
    b = BudgetTracker(tmp_path)
    a.record("key_1", "acme", 0.7)
    b.record("key_1", "acme", 0.4)
    a.flush()
    b.flush()
    a.flush()
    assert a.spent("key", "key_1", "day") == pytest.approx(1.1)
    assert b.spent("key", "key_1", "day") == pytest.approx(1.1)
    with pytest.raises(BudgetExceeded):
        a.check(key(1.0, "day"))
    a.close()
    b.close()


def test_background_flush(tmp_path: Path) -> None:
    async def run(path: Path) -> float:
        bt = BudgetTracker(path, LimitsConfig(budget_flush_seconds=0.05))
        await bt.start()
        bt.record("key_1", "acme", 0.3)
        await asyncio.sleep(0.2)
        conn = sqlite3.connect(path / "state.db")
        (total,) = conn.execute(
            "SELECT SUM(usd) FROM spend WHERE scope = 'key:key_1' AND period LIKE 'day:%'"
        ).fetchone()
        conn.close()
        await bt.aclose()
        return float(total)

    assert asyncio.run(run(tmp_path)) == pytest.approx(0.3)
