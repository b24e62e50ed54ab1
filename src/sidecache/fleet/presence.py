"""Which replicas are alive: each writes its id and the time into one sorted set every second.

A replica reads how many others wrote in the last ``window`` seconds: while Redis is away it
takes its share of a budget's remainder by that count (``governance/redis_spend``), and the
fleet view of ``/stats`` sums the figures of exactly these replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from sidecache.fleet.health import RedisDown, RedisHealth
from sidecache.tasks import stop_task

__all__ = ["Presence"]

log = logging.getLogger("sidecache.fleet")


class Presence:
    def __init__(
        self,
        client: Any,
        prefix: str,
        replica_id: str,
        health: RedisHealth,
        *,
        interval: float = 1.0,
        window: float = 10.0,
    ) -> None:
        self._r = client
        self.key = f"{prefix}fleet:replicas"
        self.replica_id = replica_id
        self.health = health
        self.interval = interval
        self.window = window
        self.alive: list[str] = [replica_id]
        self._task: asyncio.Task[None] | None = None

    @property
    def count(self) -> int:
        """Replicas seen alive at the last beat (this one included; at least 1)."""
        return max(1, len(self.alive))

    async def beat(self) -> list[str]:
        """Say this replica is alive; returns the ids alive now (raises ``RedisDown``)."""
        now = time.time()

        async def work() -> Any:
            pipe = self._r.pipeline(transaction=False)
            pipe.zadd(self.key, {self.replica_id: now})
            pipe.zremrangebyscore(self.key, "-inf", now - self.window)
            pipe.zrange(self.key, 0, -1)
            pipe.pexpire(self.key, int(self.window * 3000))
            return await pipe.execute()

        replies = await self.health.call(work)
        self.alive = sorted(x.decode() if isinstance(x, bytes) else str(x) for x in replies[2])
        return self.alive

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sidecache-presence")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(RedisDown):
                await self.beat()
            await asyncio.sleep(self.interval)

    async def aclose(self) -> None:
        await stop_task(self._task)
        self._task = None
        with contextlib.suppress(RedisDown):
            await self.health.call(lambda: self._r.zrem(self.key, self.replica_id))
