"""``governance.store = "redis"``: keys, limits and spend shared by every replica.

Opens one blocking client (the key store's writes and its watcher thread) and the replica's
``FleetLink``: the asyncio client of limits and spend on the request path, the ``RedisHealth``
breaker they share with the fleet view, and this replica's ``Presence``. Redis unreachable at
start is a start-up error that names the URL (password hidden).
"""

from __future__ import annotations

from pathlib import Path

from sidecache.config import Config
from sidecache.fleet.connection import connect
from sidecache.fleet.link import FleetLink
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
    """``Governance`` plus the replica's ``FleetLink`` (id, client, breaker, presence), which
    the fleet view of ``/stats`` shares."""

    def __init__(self, cfg: Config, link: FleetLink | None = None) -> None:
        self.link = link if link is not None else FleetLink(cfg.redis)
        keys = open_keys(cfg)
        client, prefix, health = self.link.client, self.link.prefix, self.link.health
        presence = self.link.presence
        super().__init__(
            keys=keys,
            limits=RedisLimits(client, prefix, health, cfg.limits),
            spend=RedisSpend(
                client,
                prefix,
                health,
                cfg.limits,
                hold_seconds=hold_seconds(cfg),
                replicas=lambda: presence.count,
            ),
        )
        self.key_store = keys

    def figures(self) -> dict[str, object]:
        """How the shared state is doing, for ``/stats`` (``shared_state``)."""
        health = self.link.health
        limits, spend = self.limits, self.spend
        assert isinstance(limits, RedisLimits) and isinstance(spend, RedisSpend)
        return {
            "store": "redis",
            "redis": "up" if health.up else "down",
            "redis_outages": health.outages,
            "replicas_alive": self.link.presence.count,
            "keys_stale_seconds": round(self.key_store.stale_seconds, 3),
            "limit_fallbacks": limits.fallbacks,
            "budget_fallbacks": spend.fallbacks,
            "unsent_settlements": spend.unsent,
        }

    async def start(self) -> None:
        self.key_store.start_watching()
        self.link.start()
        await super().start()

    async def aclose(self) -> None:
        await super().aclose()
        await self.link.aclose()


def open_governance(cfg: Config, data_dir: Path) -> SharedGovernance:
    return SharedGovernance(cfg)
