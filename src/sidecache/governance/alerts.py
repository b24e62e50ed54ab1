"""Budget alerts: hear about spend before the bill arrives.

After each request that cost money, the key's budget (its own or its plan's) and its tenant's
budget (``limits.tenant_budgets``) are compared with the thresholds (``[alerts] thresholds``,
overridden per plan or tenant with ``alert_thresholds``; default 50%, 80% and 100% of the
period's budget). A threshold reached raises one event, once per budget, threshold and period:
the claim is a row in ``state.db`` (``INSERT OR IGNORE``), so several gateways sharing the data
directory, and a restart, raise it once; with ``governance.store = "redis"`` a Redis key claims it
first, so a fleet on several machines raises it once too. The event is posted as JSON to ``[alerts]
webhook_url`` in the background, retried with exponential backoff; an event still undelivered
when the gateway stops is posted again after the next start. ``/stats`` lists recent events
with their delivery status. The webhook's URL and headers may hold secrets: they are never
logged, and a delivery error is reported as a status code or an exception class only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from sidecache.config import Config
from sidecache.governance.backends import Spend
from sidecache.governance.budget import Period, period_key
from sidecache.governance.keys import KeyRecord
from sidecache.governance.state import open_state_db

log = logging.getLogger("sidecache.alerts")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_alerts (
    scope     TEXT NOT NULL,
    period    TEXT NOT NULL,
    threshold REAL NOT NULL,
    event     TEXT NOT NULL,
    status    TEXT NOT NULL,
    attempts  INTEGER NOT NULL DEFAULT 0,
    created   REAL NOT NULL,
    PRIMARY KEY (scope, period, threshold)
)
"""
RECENT = 100
"""Events kept for ``/stats``."""
_ADJ = {"day": "daily", "month": "monthly"}

StatusHook = Callable[[str, float, str], None]
"""``(scope, threshold, status)``: a metric hook, called when an event is raised and settled."""


class BudgetAlerts:
    def __init__(
        self,
        cfg: Config,
        budgets: Spend,
        data_dir: str | Path,
        *,
        on_status: StatusHook | None = None,
    ) -> None:
        self.cfg = cfg
        self.budgets = budgets
        self.on_status = on_status
        self._conn: sqlite3.Connection = open_state_db(data_dir)
        self._conn.execute(_SCHEMA)
        self._lock = threading.Lock()
        self._fired: set[tuple[str, str, float]] = set()
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._pending: list[dict[str, Any]] = self._load(time.time())

    # -- raising ----------------------------------------------------------------------------

    def check(self, key: KeyRecord) -> None:
        """Raise, in the background, every threshold the key's and its tenant's spend has
        reached this period (called after each request that cost money; never waits)."""
        if not any(True for _ in self._budgets(key)):
            return
        try:
            task = asyncio.get_running_loop().create_task(self.evaluate(key))
        except RuntimeError:  # no loop: nothing to schedule on (a synchronous caller)
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def evaluate(self, key: KeyRecord, now: float | None = None) -> None:
        """Compare the spend the store reports with each threshold; raise those reached."""
        t = time.time() if now is None else now
        for scope, name, usd, period, thresholds in self._budgets(key):
            try:
                spent = await self.budgets.spent(scope, name, period)
            except Exception:  # a store that cannot answer now: the next request checks again
                log.warning("budget alert: spend of %s %s unavailable", scope, name)
                continue
            share = spent / usd if usd > 0 else (float("inf") if spent > 0 else 0.0)
            slot = (f"{scope}:{name}", f"{period}:{period_key(period, t)}")
            for threshold in thresholds:
                if share + 1e-9 >= threshold and (*slot, threshold) not in self._fired:
                    self._fired.add((*slot, threshold))
                    self._raise(key, scope, name, usd, period, threshold, spent, slot, t)

    def _budgets(self, key: KeyRecord) -> Iterator[tuple[str, str, float, Period, list[float]]]:
        alerts = self.cfg.alerts
        tenant = self.cfg.tenants.get(key.tenant)
        plan = self.cfg.plans.get(key.plan) if key.plan else None
        tenant_thresholds = tenant.alert_thresholds if tenant is not None else None
        plan_thresholds = plan.alert_thresholds if plan is not None else None
        if key.budget_usd is not None:
            thresholds = plan_thresholds or tenant_thresholds or alerts.thresholds
            yield "key", key.id, key.budget_usd, key.budget_period or "month", thresholds
        budget = self.cfg.limits.tenant_budgets.get(key.tenant)
        if budget is not None:
            yield (
                "tenant",
                key.tenant,
                budget.usd,
                budget.period,
                (tenant_thresholds or alerts.thresholds),
            )

    def _raise(
        self,
        key: KeyRecord,
        scope: str,
        name: str,
        usd: float,
        period: Period,
        threshold: float,
        spent: float,
        slot: tuple[str, str],
        now: float,
    ) -> None:
        whose = f"key {key.id} of tenant {key.tenant!r}" if scope == "key" else f"tenant {name!r}"
        event: dict[str, Any] = {
            "type": "budget.threshold_reached",
            "id": "alert_" + secrets.token_hex(8),
            "scope": scope,
            "key_id": key.id if scope == "key" else None,
            "tenant": key.tenant,
            "plan": key.plan,
            "threshold": threshold,
            "budget_usd": usd,
            "spent_usd": round(spent, 6),
            "period": period,
            "period_start": slot[1].partition(":")[2],
            "created_at": round(now, 3),
            "message": (
                f"{whose} has spent ${spent:.2f} of its {_ADJ[period]} budget of ${usd:.2f}"
                f" ({threshold:.0%} threshold)"
            ),
        }
        entry = {"event": event, "status": "pending", "attempts": 0, "error": None}
        self.recent.appendleft(entry)
        self._schedule(entry, slot, claim=True)

    # -- delivery ---------------------------------------------------------------------------

    def _schedule(self, entry: dict[str, Any], slot: tuple[str, str], *, claim: bool) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self._deliver(entry, slot, claim))
        except RuntimeError:  # no loop (a synchronous caller): deliver after start()
            entry["slot"], entry["claim"] = slot, claim
            self._pending.append(entry)
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, entry: dict[str, Any], slot: tuple[str, str], claim: bool) -> None:
        event = entry["event"]
        if claim and not await self._claim_for_fleet(slot, event):
            entry["status"] = "raised_elsewhere"  # another gateway (this data dir, or fleet) has it
            return
        self._status(event, "raised")
        alerts = self.cfg.alerts
        if not alerts.webhook_url:
            await self._settle(entry, slot, "listed")
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=alerts.timeout_seconds)
        delay = alerts.backoff_seconds
        body = orjson.dumps(event)
        headers = {**alerts.headers, "content-type": "application/json"}
        for attempt in range(1, alerts.max_attempts + 1):
            entry["attempts"] = attempt
            try:
                r = await self._client.post(alerts.webhook_url, content=body, headers=headers)
                if 200 <= r.status_code < 300:
                    entry["error"] = None
                    await self._settle(entry, slot, "delivered")
                    return
                entry["error"] = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                entry["error"] = type(exc).__name__  # never the URL: it may hold a token
            if attempt < alerts.max_attempts:
                await asyncio.sleep(delay)
                delay = min(alerts.backoff_max_seconds, delay * 2)
        log.warning(
            "budget alert %s could not be delivered after %d attempts (%s)",
            event["id"],
            alerts.max_attempts,
            entry["error"],
        )
        await self._settle(entry, slot, "failed")

    async def _settle(self, entry: dict[str, Any], slot: tuple[str, str], status: str) -> None:
        entry["status"] = status
        self._status(entry["event"], status)
        await asyncio.to_thread(self._store_status, slot, entry)

    def _status(self, event: dict[str, Any], status: str) -> None:
        if self.on_status is not None:
            self.on_status(event["scope"], event["threshold"], status)

    # -- state.db ---------------------------------------------------------------------------

    async def _claim_for_fleet(self, slot: tuple[str, str], event: dict[str, Any]) -> bool:
        """One event per budget, threshold and period: for the fleet when governance is shared
        (the store's claim), else for every gateway on this data directory (``state.db``)."""
        period = event["period"]
        shared = await self.budgets.claim_alert("|".join(slot), event["threshold"], period)
        if shared is False:
            return False
        local = await asyncio.to_thread(self._claim, slot, event)  # its row tracks delivery
        return True if shared else local

    def _claim(self, slot: tuple[str, str], event: dict[str, Any]) -> bool:
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO budget_alerts"
                " (scope, period, threshold, event, status, created) VALUES (?,?,?,?,?,?)",
                (*slot, event["threshold"], orjson.dumps(event).decode(), "pending", time.time()),
            )
            return cur.rowcount == 1

    def _store_status(self, slot: tuple[str, str], entry: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE budget_alerts SET status = ?, attempts = ?"
                " WHERE scope = ? AND period = ? AND threshold = ?",
                (entry["status"], entry["attempts"], *slot, entry["event"]["threshold"]),
            )

    def _load(self, now: float) -> list[dict[str, Any]]:
        """Thresholds already raised this period (not raised again), recent events for
        ``/stats``, and the undelivered ones to post again."""
        periods = (f"day:{period_key('day', now)}", f"month:{period_key('month', now)}")
        rows = self._conn.execute(
            "SELECT scope, period, threshold, event, status, attempts FROM budget_alerts"
            " WHERE period IN (?, ?) ORDER BY created",
            periods,
        ).fetchall()
        pending = []
        for scope, period, threshold, event, status, attempts in rows:
            self._fired.add((str(scope), str(period), float(threshold)))
            entry = {"event": orjson.loads(event), "status": str(status), "attempts": attempts}
            entry["error"] = None
            entry["slot"], entry["claim"] = (str(scope), str(period)), False
            self.recent.appendleft(entry)
            if status == "pending":
                pending.append(entry)
        return pending

    # -- lifecycle and figures --------------------------------------------------------------

    async def start(self) -> None:
        """Post again what an earlier run left undelivered."""
        pending, self._pending = self._pending, []
        for entry in pending:
            self._schedule(entry, entry.pop("slot"), claim=entry.pop("claim"))

    async def aclose(self, grace: float = 2.0) -> None:
        """Give deliveries in progress a moment, then stop (pending ones resume next start)."""
        if self._tasks:
            _, running = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in running:
                task.cancel()
            for task in running:
                with contextlib.suppress(BaseException):
                    await task
        if self._client is not None:
            await self._client.aclose()
        with self._lock:
            self._conn.close()

    def snapshot(self) -> dict[str, Any]:
        """``/stats`` ``budget_alerts``: counts by status and the recent events, newest first."""
        counts: dict[str, int] = {}
        recent = []
        for entry in self.recent:
            counts[entry["status"]] = counts.get(entry["status"], 0) + 1
            recent.append(
                {
                    **entry["event"],
                    "status": entry["status"],
                    "attempts": entry["attempts"],
                    "error": entry.get("error"),
                }
            )
        return {"counts": counts, "recent": recent}
