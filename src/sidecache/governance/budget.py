"""Spend budgets per key and per tenant, per UTC day or month.

Spend is kept in memory for the current day and month (reads cost a dict lookup) and in the
``spend`` table of ``state.db`` so it survives restarts. ``record`` only adds to memory and to a
pending batch; ``flush`` (run every ``limits.budget_flush_seconds`` in a worker thread once
``start`` is called) adds the batch to the database and re-reads the current totals, so several
gateway processes sharing one data directory converge within a flush interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Literal

from sidecache.config import LimitsConfig
from sidecache.errors import BudgetExceeded
from sidecache.governance.keys import KeyRecord
from sidecache.governance.state import open_state_db

log = logging.getLogger("sidecache.budget")

Period = Literal["day", "month"]
Scope = Literal["key", "tenant"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spend (
    scope  TEXT NOT NULL,
    period TEXT NOT NULL,
    usd    REAL NOT NULL,
    PRIMARY KEY (scope, period)
)
"""


_ADJ = {"day": "daily", "month": "monthly"}


def period_key(period: Period, now: float) -> str:
    """``2026-11-23`` for a day, ``2026-11`` for a month (UTC)."""
    day, month = _keys_of_day(int(now // 86_400))
    return day if period == "day" else month


@functools.lru_cache(maxsize=8)
def _keys_of_day(day_index: int) -> tuple[str, str]:
    """Day and month keys of a UTC day (cached: formatting dates is slow on the hot path)."""
    d = dt.datetime.fromtimestamp(day_index * 86_400, dt.UTC)
    return d.strftime("%Y-%m-%d"), d.strftime("%Y-%m")


def seconds_until_rollover(period: Period, now: float) -> float:
    """Seconds until the current UTC day or month ends."""
    d = dt.datetime.fromtimestamp(now, dt.UTC)
    if period == "day":
        start = d.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + dt.timedelta(days=1)
    else:
        start = d.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (
            start.replace(year=d.year + 1, month=1)
            if d.month == 12
            else start.replace(month=d.month + 1)
        )
    return max(0.0, end.timestamp() - now)


def _slot(scope: Scope, name: str, period: Period, now: float) -> tuple[str, str]:
    return f"{scope}:{name}", f"{period}:{period_key(period, now)}"


class BudgetTracker:
    """Spend per key and tenant; refuses requests once a budget is used up."""

    def __init__(self, data_dir: str | Path, limits: LimitsConfig | None = None) -> None:
        self._limits = limits if limits is not None else LimitsConfig()
        self._conn: sqlite3.Connection = open_state_db(data_dir)
        self._conn.execute(_SCHEMA)
        self._lock = threading.Lock()  # guards _totals and _pending
        self._db_lock = threading.Lock()  # one flush at a time on the connection
        self._totals: dict[tuple[str, str], float] = {}
        self._pending: dict[tuple[str, str], float] = {}
        self._task: asyncio.Task[None] | None = None
        self._reload(time.time())

    # -- reads ------------------------------------------------------------------------------

    def spent(self, scope: Scope, name: str, period: Period, now: float | None = None) -> float:
        """USD spent by a key (``scope="key"``, name = key id) or tenant in the current period."""
        t = time.time() if now is None else now
        return self._totals.get(_slot(scope, name, period, t), 0.0)

    def check(self, record: KeyRecord, now: float | None = None) -> None:
        """Raise ``BudgetExceeded`` if the key's or its tenant's budget is used up.

        ``retry_after`` is the time until the period rolls over (UTC midnight or month start).
        """
        t = time.time() if now is None else now
        if record.budget_usd is not None:
            period: Period = record.budget_period or "month"
            used = self.spent("key", record.id, period, t)
            if used >= record.budget_usd:
                raise BudgetExceeded(
                    f"this key's {_ADJ[period]} budget of ${record.budget_usd:.2f} is used up"
                    f" (${used:.4f} spent); it renews at the start of the next {period} (UTC)",
                    retry_after=seconds_until_rollover(period, t),
                )
        tenant_budget = self._limits.tenant_budgets.get(record.tenant)
        if tenant_budget is not None:
            used = self.spent("tenant", record.tenant, tenant_budget.period, t)
            if used >= tenant_budget.usd:
                raise BudgetExceeded(
                    f"tenant {record.tenant!r} has used up its {_ADJ[tenant_budget.period]} budget"
                    f" of ${tenant_budget.usd:.2f} (${used:.4f} spent); it renews at the start"
                    f" of the next {tenant_budget.period} (UTC)",
                    retry_after=seconds_until_rollover(tenant_budget.period, t),
                )

    # -- writes -----------------------------------------------------------------------------

    def record(self, key_id: str, tenant: str, usd: float, now: float | None = None) -> None:
        """Add ``usd`` to the key's and the tenant's day and month totals (memory only)."""
        if usd <= 0:
            return
        t = time.time() if now is None else now
        with self._lock:
            for scope, name in (("key", key_id), ("tenant", tenant)):
                for period in ("day", "month"):
                    slot = _slot(scope, name, period, t)  # type: ignore[arg-type]
                    self._totals[slot] = self._totals.get(slot, 0.0) + usd
                    self._pending[slot] = self._pending.get(slot, 0.0) + usd

    def flush(self, now: float | None = None) -> None:
        """Write pending spend to the database and re-read current totals (blocking)."""
        t = time.time() if now is None else now
        with self._db_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
            if batch:
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                    self._conn.executemany(
                        "INSERT INTO spend (scope, period, usd) VALUES (?, ?, ?)"
                        " ON CONFLICT (scope, period) DO UPDATE SET usd = usd + excluded.usd",
                        [(s, p, usd) for (s, p), usd in batch.items()],
                    )
                    self._conn.execute("COMMIT")
                except sqlite3.Error:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                    with self._lock:  # keep the spend for the next attempt
                        for slot, usd in batch.items():
                            self._pending[slot] = self._pending.get(slot, 0.0) + usd
                    log.exception("could not write spend to the state database")
                    return
            self._reload(t)

    def _reload(self, now: float) -> None:
        """Totals of the current day and month from the database, plus unflushed spend."""
        periods = (f"day:{period_key('day', now)}", f"month:{period_key('month', now)}")
        rows = self._conn.execute(
            "SELECT scope, period, usd FROM spend WHERE period IN (?, ?)", periods
        ).fetchall()
        with self._lock:
            totals = {(str(s), str(p)): float(u) for s, p, u in rows}
            for slot, usd in self._pending.items():
                totals[slot] = totals.get(slot, 0.0) + usd
            self._totals = totals

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Flush periodically in a worker thread until ``aclose``."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sidecache-budget-flush")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._limits.budget_flush_seconds)
            try:
                await asyncio.to_thread(self.flush)
            except Exception:  # never let the flusher die
                log.exception("budget flush failed")

    async def aclose(self) -> None:
        """Stop the flusher, write what is pending and close the database."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Write what is pending and close the database (blocking)."""
        self.flush()
        with self._db_lock:
            self._conn.close()
