"""``governance.store = "redis"``: keys, limits and spend shared by every replica.

Opens one blocking client (the key store's writes and its watcher thread) and one asyncio
client (limits and spend on the request path), a ``RedisHealth`` breaker they share with the
fleet parts, and this replica's ``Presence``. Redis unreachable at start is a start-up error
that names the URL (password hidden).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from sidecache.config import Config
from sidecache.fleet.connection import connect, connect_async
from sidecache.fleet.health import RedisHealth
from sidecache.fleet.presence import Presence
from sidecache.governance.backends import Governance
from sidecache.governance.redis_keys import RedisKeyStore
from sidecache.governance.redis_limits import RedisLimits
from sidecache.governance.redis_spend import RedisSpend

__all__ = ["SharedGovernance", "open_governance", "open_keys"]


def open_keys(cfg: Config) -> RedisKeyStore:
    """The key store alone, for the CLI (no watcher: it reads once and writes)."""
    return RedisKeyStore(
        connect(cfg.redis),
        cfg.redis.key_prefix,
        offline_seconds=cfg.governance.keys_offline_seconds,
    )


def hold_seconds(cfg: Config) -> float:
    """The longest a request can hold budget: every attempt at the slowest provider's total
    timeout, and a minute to spare."""
    slowest = max((p.timeouts.total for p in cfg.providers.values()), default=600.0)
    return slowest * cfg.routing.retry.max_attempts + 60.0


class SharedGovernance(Governance):
    """``Governance`` plus what the shared backend adds: the breaker, the presence, the ids."""

    def __init__(self, cfg: Config, replica_id: str | None = None) -> None:
        self.replica_id = replica_id or uuid.uuid4().hex[:12]
        prefix = cfg.redis.key_prefix
        keys = open_keys(cfg)
        self.client = connect_async(cfg.redis)
        self.health = RedisHealth(cfg.redis.timeout_seconds)
        self.presence = Presence(self.client, prefix, self.replica_id, self.health)
        super().__init__(
            keys=keys,
            limits=RedisLimits(self.client, prefix, self.health, cfg.limits),
            spend=RedisSpend(
                self.client,
                prefix,
                self.health,
                cfg.limits,
                hold_seconds=hold_seconds(cfg),
                replicas=lambda: self.presence.count,
            ),
        )
        self.key_store = keys

    async def start(self) -> None:
        self.key_store.start_watching()
        self.presence.start()
        await super().start()

    async def aclose(self) -> None:
        await super().aclose()
        await self.presence.aclose()
        await self.client.aclose()


def open_governance(cfg: Config, data_dir: Path) -> SharedGovernance:
    return SharedGovernance(cfg)
