"""Opening the ``[redis]`` server: one place that knows its URL, timeouts and how to hide a
password.

``connect`` (blocking, for threads and the CLI) checks the server once and turns an unreachable
or too old Redis into a ``ServiceUnavailable`` naming the URL without its password.
``connect_async`` gives the event loop's client. Neither retries on its own: the callers bound
every call by ``timeout_seconds`` and decide what a failure means (``health``).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from sidecache.config import RedisConfig
from sidecache.errors import ServiceUnavailable

__all__ = ["REDIS_ERRORS", "connect", "connect_async", "redact_url"]

MIN_VERSION = (6, 2)
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError, TimeoutError)
"""What a Redis that is slow, gone or restarting raises."""


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def connect(cfg: RedisConfig) -> redis.Redis:
    """A checked blocking client (bytes replies, RESP2); ``ServiceUnavailable`` if Redis
    cannot be reached or is older than 6.2."""
    shown = redact_url(cfg.url)
    try:
        client = redis.Redis.from_url(
            cfg.url,
            protocol=2,
            socket_timeout=cfg.timeout_seconds,
            socket_connect_timeout=cfg.timeout_seconds,
            # heals a pooled connection a restart closed; a timeout is not retried (it would
            # only double the wait on a Redis that is stuck)
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        )
    except ValueError as exc:
        raise ServiceUnavailable(f"invalid Redis URL {shown}: {exc}") from exc
    try:
        version = str(client.info("server").get("redis_version", "0"))
    except redis.RedisError as exc:
        client.close()
        raise ServiceUnavailable(f"cannot reach Redis at {shown}: {exc}") from exc
    major, minor, *_ = (int(x) for x in [*version.split("."), "0", "0"][:2])
    if (major, minor) < MIN_VERSION:
        client.close()
        raise ServiceUnavailable(f"Redis at {shown} is version {version}; 6.2+ is needed")
    return client


def connect_async(cfg: RedisConfig) -> redis.asyncio.Redis:
    """An asyncio client (bytes replies, RESP2); connects on first use."""
    try:
        return redis.asyncio.Redis.from_url(
            cfg.url,
            protocol=2,
            socket_timeout=cfg.timeout_seconds,
            socket_connect_timeout=cfg.timeout_seconds,
            retry=AsyncRetry(NoBackoff(), 0),
        )
    except ValueError as exc:
        raise ServiceUnavailable(f"invalid Redis URL {redact_url(cfg.url)}: {exc}") from exc
