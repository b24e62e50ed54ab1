"""Spend budgets per key and per tenant, per UTC day or month.

Spend is kept in memory for the current day and month (reads cost a dict lookup) and in the
``spend`` table of ``state.db`` so it survives restarts.

A budget is a hard ceiling under concurrency: a miss *reserves* its estimated cost before it goes
upstream (``reserve``), and requests are admitted only while spent + reserved is below the
budget; the reservation is replaced by the real cost when the request is settled, or released if
it cost nothing. So N concurrent misses cannot all pass a check that none of them has paid for
yet: the overshoot is at most one request's estimate (more only if a request costs more than
its estimate). ``record`` only adds to memory and to a
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
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import msgspec

from sidecache.config import LimitsConfig
from sidecache.errors import BudgetExceeded
from sidecache.governance.keys import KeyRecord
from sidecache.governance.state import open_state_db
from sidecache.tasks import stop_task

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


class Reservation(msgspec.Struct, frozen=True):
    """Budget held for one request in flight: ``usd`` on each budgeted slot."""

    slots: tuple[tuple[str, str], ...]
    usd: float


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
        self._reserved: dict[tuple[str, str], float] = {}
        self._task: asyncio.Task[None] | None = None
        self._reload(time.time())

    # -- reads ------------------------------------------------------------------------------

    def spent(self, scope: Scope, name: str, period: Period, now: float | None = None) -> float:
        """USD spent by a key (``scope="key"``, name = key id) or tenant in the current period."""
        t = time.time() if now is None else now
        return self._totals.get(_slot(scope, name, period, t), 0.0)

    def _budgets(
        self, record: KeyRecord, now: float
    ) -> Iterator[tuple[tuple[str, str], float, Period, str]]:
        """The budgets a key's requests count against: ``(slot, usd, period, owner)``."""
        if record.budget_usd is not None:
            period: Period = record.budget_period or "month"
            yield _slot("key", record.id, period, now), record.budget_usd, period, "key"
        tenant_budget = self._limits.tenant_budgets.get(record.tenant)
        if tenant_budget is not None:
            slot = _slot("tenant", record.tenant, tenant_budget.period, now)
            yield slot, tenant_budget.usd, tenant_budget.period, "tenant"

    def check(self, record: KeyRecord, now: float | None = None) -> None:
        """Raise ``BudgetExceeded`` if the key's or its tenant's budget is used up (spent and
        reserved by requests in flight).

        ``retry_after`` is the time until the period rolls over (UTC midnight or month start).
        """
        t = time.time() if now is None else now
        for slot, usd, period, owner in self._budgets(record, t):
            used = self._totals.get(slot, 0.0) + self._reserved.get(slot, 0.0)
            if used >= usd:
                whose = "this key's" if owner == "key" else f"tenant {record.tenant!r}'s"
                raise BudgetExceeded(
                    f"{whose} {_ADJ[period]} budget of ${usd:.2f} is used up"
                    f" (${used:.4f} spent or reserved by requests in flight); it renews at the"
                    f" start of the next {period} (UTC)",
                    retry_after=seconds_until_rollover(period, t),
                )

    def reserve(self, record: KeyRecord, usd: float, now: float | None = None) -> Reservation:
        """Admit a request estimated at ``usd`` (``check``) and hold that much of every budget
        it counts against until ``settle``. Synchronous and await-free: atomic on the loop."""
        t = time.time() if now is None else now
        self.check(record, t)
        slots = tuple(slot for slot, *_ in self._budgets(record, t))
        held = max(0.0, usd)
        with self._lock:
            for slot in slots:
                self._reserved[slot] = self._reserved.get(slot, 0.0) + held
        return Reservation(slots, held)

    def settle(self, reservation: Reservation | None, key_id: str, tenant: str, usd: float) -> None:
        """Replace a request's reservation (if any) by what it really cost."""
        if reservation is not None and reservation.slots:
            with self._lock:
                for slot in reservation.slots:
                    left = self._reserved.get(slot, 0.0) - reservation.usd
                    if left > 1e-12:
                        self._reserved[slot] = left
                    else:
                        self._reserved.pop(slot, None)
        self.record(key_id, tenant, usd)

    def reserved(self, scope: Scope, name: str, period: Period, now: float | None = None) -> float:
        """USD held by requests in flight against a key's or tenant's budget."""
        t = time.time() if now is None else now
        return self._reserved.get(_slot(scope, name, period, t), 0.0)

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
        await stop_task(self._task)
        self._task = None
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Write what is pending and close the database (blocking)."""
        self.flush()
        with self._db_lock:
            self._conn.close()
