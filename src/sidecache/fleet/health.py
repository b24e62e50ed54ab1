"""Whether a request may wait on Redis right now: one breaker for the shared state.

A Redis that is gone fails fast (connection refused), but a Redis that is stopped or overloaded
answers nothing until the socket timeout. If every request found that out for itself, each would
wait ``timeout_seconds``. So the first failure opens the breaker: from then on callers get
``RedisDown`` at once and apply their fault policy (``limits.on_redis_down``), and once per
``retry_seconds`` a single call is let through as a probe; its success closes the breaker. Every
call is bounded by the timeout, so nothing waits on Redis longer than that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis

from sidecache.fleet.connection import REDIS_ERRORS

__all__ = ["RedisDown", "RedisHealth"]

log = logging.getLogger("sidecache.fleet")

T = TypeVar("T")


class RedisDown(redis.ConnectionError):
    """Redis did not answer (now, or recently enough that it was not asked)."""


class RedisHealth:
    """The breaker; one per process, shared by everything that calls Redis on the request path."""

    def __init__(
        self,
        timeout: float,
        retry_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        what: str = ": applying limits.on_redis_down",
    ) -> None:
        """``what``: said in the log line when Redis stops answering (what happens now)."""
        self.timeout = timeout
        self.what = what
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.down_since: float | None = None
        self._next_probe = 0.0
        self._probing = False
        self.failures = 0
        """Calls that failed or were refused while Redis was down (for ``/stats``)."""
        self.outages = 0

    @property
    def up(self) -> bool:
        return self.down_since is None

    def may_try(self) -> bool:
        """True while up, and for one probe per ``retry_seconds`` while down."""
        if self.down_since is None:
            return True
        now = self.clock()
        if self._probing or now < self._next_probe:
            return False
        self._probing = True
        return True

    async def call(self, work: Callable[[], Awaitable[T]]) -> T:
        """``await work()`` bounded by the timeout; ``RedisDown`` if it fails, or at once while
        the breaker is open (between probes)."""
        if not self.may_try():
            self.failures += 1
            raise RedisDown("Redis is not answering")
        try:
            async with asyncio.timeout(self.timeout):
                result = await work()
        except REDIS_ERRORS as exc:
            self.failed(exc)
            raise RedisDown(str(exc) or type(exc).__name__) from exc
        except BaseException:
            self._probing = False
            raise
        self.succeeded()
        return result

    def call_sync(self, work: Callable[[], T]) -> T:
        """``call`` for blocking clients (the bound is the client's own socket timeout)."""
        if not self.may_try():
            self.failures += 1
            raise RedisDown("Redis is not answering")
        try:
            result = work()
        except REDIS_ERRORS as exc:
            self.failed(exc)
            raise RedisDown(str(exc) or type(exc).__name__) from exc
        except BaseException:
            self._probing = False
            raise
        self.succeeded()
        return result

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        self._probing = False
        self._next_probe = self.clock() + self.retry_seconds
        if self.down_since is None:
            self.down_since = self.clock()
            self.outages += 1
            log.warning("Redis is not answering (%s)%s", exc, self.what)

    def succeeded(self) -> None:
        self._probing = False
        if self.down_since is not None:
            log.warning("Redis answers again after %.1fs", self.clock() - self.down_since)
            self.down_since = None
