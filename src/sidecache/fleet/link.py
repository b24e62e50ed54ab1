"""One replica's tie to the shared Redis: its id, an asyncio client, the breaker and presence.

Made once per process by whichever part needs Redis first (shared governance, or the app when
only the cache is shared) and handed to the others, so a replica has one breaker and one id.
"""

from __future__ import annotations

import uuid

from sidecache.config import RedisConfig
from sidecache.fleet.connection import connect_async
from sidecache.fleet.health import RedisHealth
from sidecache.fleet.presence import Presence

__all__ = ["FleetLink"]


class FleetLink:
    def __init__(self, cfg: RedisConfig, replica_id: str | None = None) -> None:
        self.cfg = cfg
        self.prefix = cfg.key_prefix
        self.replica_id = replica_id or uuid.uuid4().hex[:12]
        self.client = connect_async(cfg)
        self.health = RedisHealth(
            cfg.timeout_seconds, what=": cache lookups are misses, limits.on_redis_down applies"
        )
        self.presence = Presence(self.client, self.prefix, self.replica_id, self.health)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.presence.start()

    async def aclose(self) -> None:
        await self.presence.aclose()
        await self.client.aclose()
