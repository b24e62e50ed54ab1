"""``[governance]``, and the one ``[redis]`` that several gateway replicas share.

``[redis]`` names the Redis server every shared part uses: the cache with
``cache.store = "redis"``, keys, limits and spend with ``governance.store = "redis"``, and the
fleet view of ``/stats``. ``[cache.redis]``, its older name, still works: ``resolve_redis``
makes the two one when the file is loaded.
"""

from __future__ import annotations

from typing import Literal

from sidecache.config.base import Base, Seconds
from sidecache.config.cache import RedisConfig
from sidecache.errors import ConfigError

__all__ = ["GovernanceConfig", "resolve_redis"]


class GovernanceConfig(Base, frozen=True):
    """Where keys, rate limits, budgets and spend live."""

    store: Literal["sqlite", "redis"] = "sqlite"
    """``sqlite``: ``<data_dir>/state.db`` and in-process rate limits (one machine, zero
    setup); ``redis``: the ``[redis]`` server, shared by every replica."""
    keys_offline_seconds: Seconds = 300.0
    """With ``store = "redis"``: how long the keys a replica already knows keep working from
    its local copy while Redis does not answer (a revocation cannot reach it meanwhile); past
    it, requests with a key get 503 until Redis is back."""


def resolve_redis(top: RedisConfig, cache: RedisConfig) -> RedisConfig:
    """The one Redis of a file that may set ``[redis]``, ``[cache.redis]`` (its older name) or
    both; both set to different servers is an error that names them."""
    default = RedisConfig()
    if top != default and cache != default and top != cache:
        raise ConfigError(
            "config sections [redis] and [cache.redis] are both set and differ: keep [redis]"
            " ([cache.redis] is its older name)"
        )
    return top if top != default else cache
