"""Budgets and spend per key and tenant on Redis: one atomic script per reservation and one per
settlement, so replicas can never together overspend what none of them has paid for yet.

Per budgeted slot (``key:<id>`` or ``tenant:<name>``, and ``day:<UTC date>`` or
``month:<UTC month>``), under the prefix ``P``::

    P gov:spent:<slot>        what was spent (INCRBYFLOAT); day slots live 40 days, months 400
    P gov:held:<slot>         hash: reservation id -> USD held by a request in flight
    P gov:held_until:<slot>   sorted set: reservation id -> when its hold lapses
    P gov:settled:<rid>       a settlement already applied (replays are harmless), for a day

``RESERVE`` drops lapsed holds, adds spent and held for each budget of the key and its tenant,
refuses if one is used up and otherwise holds the estimate on all of them, atomically: N
requests at once through any replicas are admitted only while spent + held is below the
budget, so the overshoot is at most one estimate. ``SETTLE`` releases the hold and adds the
real cost to the key's and tenant's day and month. A hold lapses after the longest a request
can take (a replica that dies mid-request cannot keep a budget held).

When Redis does not answer, ``limits.on_redis_down`` decides. ``closed``: budgeted requests are
refused (429 ``budget_unavailable``). ``open``: a replica may spend its share of what was left
of each budget when it last heard from Redis, ``(budget - used) / replicas alive``, so the fleet
together still stays within the budget (plus one estimate per replica); a budget near its end
(a share smaller than what this replica already spent) refuses, and so does a budget this
replica never saw. Settlements that Redis did not take wait in a ledger and are replayed, before
any new reservation, once it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from sidecache.config import LimitsConfig
from sidecache.errors import BudgetExceeded
from sidecache.fleet.health import RedisDown, RedisHealth
from sidecache.governance.budget import Period, Reservation, period_key, seconds_until_rollover
from sidecache.governance.keys import KeyRecord
from sidecache.tasks import stop_task

__all__ = ["RedisSpend", "SharedReservation"]

log = logging.getLogger("sidecache.governance")

_ADJ = {"day": "daily", "month": "monthly"}
DAY_TTL = 40 * 86_400
MONTH_TTL = 400 * 86_400
SETTLED_TTL = 86_400
_REPLAY_BATCH = 500

# KEYS: spent, held, until for each budget;  ARGV: rid, usd, hold_ms, check_only, limit...
# Returns {1, used...} (used before this hold) or {0, index of the used-up budget, used}.
RESERVE = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS / 3
local used = {}
for i = 1, n do
  local held, untl = KEYS[3 * i - 1], KEYS[3 * i]
  for _, rid in ipairs(redis.call('ZRANGEBYSCORE', untl, '-inf', now)) do
    redis.call('HDEL', held, rid)
  end
  redis.call('ZREMRANGEBYSCORE', untl, '-inf', now)
  local u = tonumber(redis.call('GET', KEYS[3 * i - 2]) or '0')
  for _, v in ipairs(redis.call('HVALS', held)) do u = u + tonumber(v) end
  used[i] = u
  if u >= tonumber(ARGV[4 + i]) then return {0, i, tostring(u)} end
end
if ARGV[4] == '0' then
  local hold = tonumber(ARGV[3])
  for i = 1, n do
    redis.call('HSET', KEYS[3 * i - 1], ARGV[1], ARGV[2])
    redis.call('ZADD', KEYS[3 * i], now + hold, ARGV[1])
    redis.call('PEXPIRE', KEYS[3 * i - 1], hold + 60000)
    redis.call('PEXPIRE', KEYS[3 * i], hold + 60000)
  end
end
local out = {1}
for i = 1, n do out[i + 1] = tostring(used[i]) end
return out
"""

# KEYS: settled marker, spent key-day key-month tenant-day tenant-month, then (held, until)...
# ARGV: rid, usd, day ttl, month ttl, marker ttl.   Returns 1, or 0 if already applied.
SETTLE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[5]) then return 0 end
for i = 6, #KEYS, 2 do
  redis.call('HDEL', KEYS[i], ARGV[1])
  redis.call('ZREM', KEYS[i + 1], ARGV[1])
end
if tonumber(ARGV[2]) > 0 then
  for i = 2, 5 do
    redis.call('INCRBYFLOAT', KEYS[i], ARGV[2])
    redis.call('EXPIRE', KEYS[i], (i == 2 or i == 4) and ARGV[3] or ARGV[4])
  end
end
return 1
"""


class SharedReservation(Reservation, frozen=True):
    """A reservation with the id its hold has in Redis; ``remote=False``: held in this
    replica's memory while Redis was away."""

    rid: str = ""
    remote: bool = True


class _Budget:
    __slots__ = ("limit", "owner", "period", "slot")

    def __init__(self, slot: str, limit: float, period: Period, owner: str) -> None:
        self.slot, self.limit, self.period, self.owner = slot, limit, period, owner


class RedisSpend:
    """``Spend`` over Redis (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        health: RedisHealth,
        limits: LimitsConfig,
        *,
        hold_seconds: float,
        replicas: Callable[[], int] = lambda: 1,
    ) -> None:
        self._r = client
        self.prefix = f"{prefix}gov:"
        self.health = health
        self.cfg = limits
        self.hold_ms = int(hold_seconds * 1000)
        self.replicas = replicas
        self._reserve = client.register_script(RESERVE)
        self._settle = client.register_script(SETTLE)
        self._last_used: dict[str, float] = {}
        """Fleet-wide spent + held per slot, as Redis last told this replica."""
        self._offline: dict[str, float] = {}
        """Held and spent through this replica while Redis did not answer."""
        self._ledger: list[tuple[list[str], list[Any]]] = []
        self._replaying = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self.fallbacks = 0

    # -- slots ---------------------------------------------------------------------------------

    def _budgets(self, record: KeyRecord, now: float) -> list[_Budget]:
        out = []
        if record.budget_usd is not None:
            period: Period = record.budget_period or "month"
            slot = f"key:{record.id}|{period}:{period_key(period, now)}"
            out.append(_Budget(slot, record.budget_usd, period, "key"))
        tenant = self.cfg.tenant_budgets.get(record.tenant)
        if tenant is not None:
            slot = f"tenant:{record.tenant}|{tenant.period}:{period_key(tenant.period, now)}"
            out.append(_Budget(slot, tenant.usd, tenant.period, "tenant"))
        return out

    def _k(self, kind: str, slot: str) -> str:
        return f"{self.prefix}{kind}:{slot}"

    def _slot_keys(self, slot: str) -> list[str]:
        return [self._k("spent", slot), self._k("held", slot), self._k("held_until", slot)]

    def _refusal(self, record: KeyRecord, b: _Budget, used: float, now: float) -> BudgetExceeded:
        whose = "this key's" if b.owner == "key" else f"tenant {record.tenant!r}'s"
        return BudgetExceeded(
            f"{whose} {_ADJ[b.period]} budget of ${b.limit:.2f} is used up"
            f" (${used:.4f} spent or reserved by requests in flight); it renews at the start of"
            f" the next {b.period} (UTC)",
            retry_after=seconds_until_rollover(b.period, now),
        )

    # -- admission -----------------------------------------------------------------------------

    async def check(self, key: KeyRecord) -> None:
        await self._admit(key, 0.0, check_only=True)

    async def reserve(self, key: KeyRecord, usd: float) -> Reservation:
        return await self._admit(key, max(0.0, usd), check_only=False)

    async def _admit(self, key: KeyRecord, usd: float, *, check_only: bool) -> SharedReservation:
        now = time.time()
        budgets = self._budgets(key, now)
        rid = uuid.uuid4().hex
        if not budgets:
            return SharedReservation((), usd, rid=rid, remote=False)
        keys = [k for b in budgets for k in self._slot_keys(b.slot)]
        args = [rid, repr(usd), self.hold_ms, int(check_only), *(repr(b.limit) for b in budgets)]
        try:
            if self._ledger:
                await self._replay()  # what was spent while Redis was away counts first
                if self._ledger:
                    raise RedisDown("the spend ledger is not written yet")
            reply = await self.health.call(lambda: self._reserve(keys=keys, args=args))
        except RedisDown:
            return self._admit_offline(key, budgets, usd, rid, now, check_only=check_only)
        self._offline.clear()
        if int(reply[0]) == 0:
            index, used = int(reply[1]) - 1, float(reply[2])
            self._last_used[budgets[index].slot] = used
            raise self._refusal(key, budgets[index], used, now)
        for b, used in zip(budgets, reply[1:], strict=True):
            self._last_used[b.slot] = float(used) + (0.0 if check_only else usd)
        slots = tuple((b.slot, "") for b in budgets)
        return SharedReservation(() if check_only else slots, usd, rid=rid, remote=True)

    def _admit_offline(
        self,
        key: KeyRecord,
        budgets: list[_Budget],
        usd: float,
        rid: str,
        now: float,
        *,
        check_only: bool,
    ) -> SharedReservation:
        """``limits.on_redis_down``: refuse (closed), or spend this replica's share of what was
        left at the last look (open)."""
        self.fallbacks += 1
        replicas = max(1, self.replicas())
        for b in budgets:
            known = self._last_used.get(b.slot)
            if known is not None and known >= b.limit:
                raise self._refusal(key, b, known, now)
            if self.cfg.on_redis_down == "closed" or known is None:
                why = "" if known is not None else " (and this replica has no recent figure)"
                raise BudgetExceeded(
                    "budgets cannot be checked right now: the shared store is not answering"
                    f"{why}; retry shortly",
                    code="budget_unavailable",
                    retry_after=1.0,
                )
            share = (b.limit - known) / replicas
            mine = self._offline.get(b.slot, 0.0)
            if mine >= share:
                raise BudgetExceeded(
                    f"this replica's share of what was left of the {_ADJ[b.period]} budget"
                    f" (${share:.4f} of ${b.limit:.2f}) is used while the shared store is not"
                    " answering; retry shortly",
                    code="budget_unavailable",
                    retry_after=1.0,
                )
        if check_only:
            return SharedReservation((), 0.0, rid=rid, remote=False)
        for b in budgets:
            self._offline[b.slot] = self._offline.get(b.slot, 0.0) + usd
        return SharedReservation(tuple((b.slot, "") for b in budgets), usd, rid=rid, remote=False)

    # -- settlement ----------------------------------------------------------------------------

    def settle(self, reservation: Reservation | None, key_id: str, tenant: str, usd: float) -> None:
        res = reservation if isinstance(reservation, SharedReservation) else None
        if res is not None and not res.remote:
            for slot, _ in res.slots:  # the cost replaces this replica's own hold
                if slot in self._offline:
                    self._offline[slot] += usd - res.usd
        held = res.slots if res is not None and res.remote else ()
        if usd <= 0 and not held:
            return
        now = time.time()
        day, month = f"day:{period_key('day', now)}", f"month:{period_key('month', now)}"
        rid = res.rid if res is not None else uuid.uuid4().hex
        keys = [
            f"{self.prefix}settled:{rid}",
            self._k("spent", f"key:{key_id}|{day}"),
            self._k("spent", f"key:{key_id}|{month}"),
            self._k("spent", f"tenant:{tenant}|{day}"),
            self._k("spent", f"tenant:{tenant}|{month}"),
        ]
        for slot, _ in held:
            keys += [self._k("held", slot), self._k("held_until", slot)]
        args = [rid, repr(max(0.0, usd)), DAY_TTL, MONTH_TTL, SETTLED_TTL]
        task = asyncio.get_running_loop().create_task(self._send(keys, args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, keys: list[str], args: list[Any]) -> None:
        if not self._ledger:
            try:
                await self.health.call(lambda: self._settle(keys=keys, args=args))
                return
            except RedisDown:
                pass
        self._ledger.append((keys, args))

    async def _replay(self) -> None:
        """Write the settlements Redis missed, oldest first (each applies once: replays of one
        that did get through are no-ops)."""
        async with self._replaying:
            while self._ledger:
                batch = self._ledger[:_REPLAY_BATCH]

                async def send(batch: list[tuple[list[str], list[Any]]] = batch) -> Any:
                    pipe = self._r.pipeline(transaction=False)
                    for keys, args in batch:
                        await self._settle(keys=keys, args=args, client=pipe)
                    return await pipe.execute()

                await self.health.call(send)
                del self._ledger[: len(batch)]

    async def _replay_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._ledger:
                with contextlib.suppress(RedisDown):
                    await self._replay()
                    log.info("spend written to Redis after it came back")

    # -- reading and lifecycle -----------------------------------------------------------------

    async def spent(self, scope: str, name: str, period: Period) -> float:
        """USD spent by a key (``scope="key"``, name = key id) or tenant in the current period,
        this replica's settlements in flight included (a budget alert right after a request
        must see that request's cost)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        slot = f"{scope}:{name}|{period}:{period_key(period, time.time())}"
        raw = await self.health.call(lambda: self._r.get(self._k("spent", slot)))
        return float(raw or 0.0)

    async def claim_alert(self, slot: str, threshold: float, period: Period) -> bool | None:
        key = self._k("alert", f"{slot}|{threshold!r}")
        ttl = DAY_TTL if period == "day" else MONTH_TTL
        try:
            won = await self.health.call(lambda: self._r.set(key, b"1", nx=True, ex=ttl))
        except RedisDown:
            return None  # Redis away: this replica's state.db decides (a repeat is possible)
        return bool(won)

    @property
    def unsent(self) -> int:
        """Settlements waiting for Redis."""
        return len(self._ledger)

    async def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._replay_forever(), name="sidecache-spend")

    async def aclose(self) -> None:
        await stop_task(self._loop)
        self._loop = None
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.health.timeout)
        if self._ledger:
            with contextlib.suppress(RedisDown):
                await self._replay()
        if self._ledger:
            lost = sum(float(args[1]) for _, args in self._ledger)
            log.error(
                "Redis did not answer at shutdown: %d settlements ($%.4f) are not recorded",
                len(self._ledger),
                lost,
            )
