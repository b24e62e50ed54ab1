"""Requests/min and tokens/min enforced across every replica: one Lua script per request.

Each key's two limits are token buckets in Redis (``P gov:rl:r:<key id>`` and
``P gov:rl:t:<key id>``: hashes with the level, the time it was computed and the capacity),
refilled continuously at the limit per minute, exactly as the in-process ``RateLimiter`` does.
``ADMIT`` refills both, checks both and charges both in one atomic script, so 60 requests at
once through three replicas against ``rpm = 10`` admit 10; the time is Redis's own (``TIME``),
so replicas whose clocks drift still share one bucket. The tokens estimate is corrected after
the answer by ``ADJUST``, in the background.

When Redis does not answer (``RedisHealth``), ``limits.on_redis_down`` decides: ``open`` falls
back to this replica's own buckets (each replica then admits up to the limit: the fleet up to
replicas x limit while the outage lasts), ``closed`` refuses requests of keys with a limit (429,
``limits_unavailable``, ``Retry-After: 1``).
"""

from __future__ import annotations

from typing import Any

from sidecache.config import LimitsConfig
from sidecache.errors import RateLimited
from sidecache.fleet.health import RedisDown, RedisHealth
from sidecache.fleet.tasks import Background
from sidecache.governance.keys import KeyRecord
from sidecache.governance.local import LocalLimits

__all__ = ["RedisLimits"]

_BUCKET = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function level(key, cap)
  local v = redis.call('HMGET', key, 'level', 'stamp', 'cap')
  local lv, stamp, old = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
  if not lv then return cap end
  if old ~= cap then lv = math.min(lv, cap) end
  local elapsed = now - stamp
  if elapsed > 0 then lv = math.min(cap, lv + elapsed * cap / 60) end
  return lv
end
local function store(key, lv, cap)
  redis.call('HSET', key, 'level', tostring(lv), 'stamp', tostring(now), 'cap', tostring(cap))
  -- empty or in debt, it is full again after (cap - lv) / cap minutes: then it may go
  redis.call('PEXPIRE', key, math.ceil(math.max(60, (cap - lv) * 60 / cap) * 1000) + 1000)
end
"""

# KEYS: request bucket, token bucket;  ARGV: rpm (0: none), tpm (0: none), estimated tokens
# Returns {0} admitted, {1, wait} over requests/min, {2, wait} over tokens/min.
ADMIT = (
    _BUCKET
    + """
local rpm, tpm, est = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rl, tl
if rpm > 0 then
  rl = level(KEYS[1], rpm)
  if rl < 1 then return {1, tostring((1 - rl) * 60 / rpm)} end
end
if tpm > 0 then
  tl = level(KEYS[2], tpm)
  local need = math.min(est, tpm)
  if tl < need then return {2, tostring((need - tl) * 60 / tpm)} end
end
if rpm > 0 then store(KEYS[1], rl - 1, rpm) end
if tpm > 0 then store(KEYS[2], tl - est, tpm) end
return {0}
"""
)

# KEYS: token bucket;  ARGV: tpm, tokens to charge (negative: refund)
ADJUST = (
    _BUCKET
    + """
local tpm, delta = tonumber(ARGV[1]), tonumber(ARGV[2])
store(KEYS[1], math.min(tpm, level(KEYS[1], tpm) - delta), tpm)
return 0
"""
)


class RedisLimits:
    """``Limits`` over Redis, with ``limits.on_redis_down`` when it does not answer."""

    def __init__(self, client: Any, prefix: str, health: RedisHealth, limits: LimitsConfig) -> None:
        self._r = client
        self.prefix = f"{prefix}gov:rl:"
        self.health = health
        self.cfg = limits
        self.local = LocalLimits(limits)
        self._admit = client.register_script(ADMIT)
        self._adjust = client.register_script(ADJUST)
        self._background = Background("sidecache-limits-settle")
        self.fallbacks = 0
        """Requests admitted or refused by the fault policy instead of Redis."""

    def _keys(self, key_id: str) -> list[str]:
        return [f"{self.prefix}r:{key_id}", f"{self.prefix}t:{key_id}"]

    async def admit(self, key: KeyRecord, est_tokens: int) -> None:
        args = [key.rpm or 0, key.tpm or 0, max(0, est_tokens)]
        try:
            reply = await self.health.call(lambda: self._admit(keys=self._keys(key.id), args=args))
        except RedisDown:
            self.fallbacks += 1
            if self.cfg.on_redis_down == "closed":
                raise RateLimited(
                    "rate limits cannot be checked right now (the shared store is not"
                    " answering); retry shortly",
                    code="limits_unavailable",
                    retry_after=1.0,
                ) from None
            self.local.admit_now(key, est_tokens)
            return
        which = int(reply[0])
        if which == 0:
            return
        wait = float(reply[1])
        if which == 1:
            raise RateLimited(
                f"rate limit of {key.rpm} requests per minute reached for this key;"
                f" retry in {wait:.1f}s",
                retry_after=wait,
            )
        raise RateLimited(
            f"rate limit of {key.tpm} tokens per minute reached for this key"
            f" (this request needs about {est_tokens}); retry in {wait:.1f}s",
            retry_after=wait,
        )

    def settle(self, key: KeyRecord, est_tokens: int, used_tokens: int, *, hit: bool) -> None:
        used = used_tokens if (not hit or self.cfg.hits_count_tokens) else 0
        delta = used - est_tokens
        if key.tpm and delta:
            self._background.spawn(self._correct(key, key.tpm, delta))

    async def _correct(self, key: KeyRecord, tpm: int, delta: int) -> None:
        try:
            await self.health.call(
                lambda: self._adjust(keys=self._keys(key.id)[1:], args=[tpm, delta])
            )
        except RedisDown:
            self.local.limiter.adjust_tokens(key.id, tpm, delta)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        await self._background.drain(self.health.timeout)
