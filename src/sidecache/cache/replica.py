"""Replica sync: each gateway replica on a shared store keeps its own FAISS mirror in step.

With a store that several replicas share (``Subscribable``), searching stays in process
(microseconds, no round trip) and every replica follows the store's change log on a thread of its
own, applying the other replicas' adds and deletes to its local indexes; its own changes are
already there. If the log cannot be read (Redis away) or lost events (trimmed before they were
read), the mirror is reloaded from the store once it answers again.

The follower only knows the ``Mirror`` it keeps in step (the semantic cache), through three
calls, so it can be tested and reasoned about alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from sidecache.cache.entries import ChangeEvent, ChangeLogGap, Subscribable
from sidecache.tasks import stop_task

__all__ = ["Mirror", "ReplicaSync"]

log = logging.getLogger("sidecache.cache")

T = TypeVar("T")
_FOLLOW_BLOCK_MS = 500
_FOLLOW_RETRY_SECONDS = 1.0


class Mirror(Protocol):
    """What a follower keeps in step: the local indexes of one replica."""

    async def reload(self) -> int:
        """Reload every vector from the store into fresh indexes, off the searching thread,
        and swap them in; returns how many vectors were loaded."""
        ...

    async def apply(
        self, events: list[ChangeEvent], own: str, replay_to: str | None
    ) -> tuple[int, str | None]:
        """Apply events; own events are skipped except up to ``replay_to`` after a reload.
        Returns how many were applied and the ``replay_to`` still pending."""
        ...


class ReplicaSync:
    """Follows a shared store's change log and applies it to a ``Mirror`` (until ``aclose``)."""

    def __init__(self, store: Subscribable, mirror: Mirror) -> None:
        self.store = store
        self.mirror = mirror
        self.events = 0
        self.resyncs = 0
        self._exec = ThreadPoolExecutor(1, thread_name_prefix="sidecache-events")
        self._task: asyncio.Task[None] | None = None

    async def _in_events(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._exec, fn, *args)

    async def position(self) -> str:
        """The change-log position to follow from: take it *before* the indexes are loaded, so
        no event can fall between the load and the follow (applying one twice is harmless)."""
        return await self._in_events(self.store.stream_position)

    def start(self, position: str) -> None:
        self._task = asyncio.create_task(self._follow(position), name="sidecache-replica-sync")

    async def aclose(self) -> None:
        await stop_task(self._task)
        self._task = None
        self._exec.shutdown(wait=True)

    async def _follow(self, position: str) -> None:
        replay_to: str | None = None
        resync = False
        while True:
            try:
                if resync:
                    position, replay_to = await self._resync()
                    resync = False
                position, events = await self._in_events(
                    self.store.events_since, position, _FOLLOW_BLOCK_MS
                )
            except ChangeLogGap as exc:
                log.warning("replica sync: %s; reloading the indexes", exc)
                resync = True
                continue
            except Exception as exc:
                if not resync:
                    log.warning("replica sync paused (%s); retrying", exc)
                resync = True
                await asyncio.sleep(_FOLLOW_RETRY_SECONDS)
                continue
            if events:
                applied, replay_to = await self.mirror.apply(
                    events, self.store.replica_id, replay_to
                )
                self.events += applied

    async def _resync(self) -> tuple[str, str | None]:
        """Reload the mirror; returns the position to follow from and, if this replica wrote
        meanwhile, the position up to which its own events must be applied too (its writes
        during the load may have missed the fresh indexes)."""
        position = await self._in_events(self.store.stream_position)
        loaded = await self.mirror.reload()
        after = await self._in_events(self.store.stream_position)
        self.resyncs += 1
        log.info("replica sync: indexes reloaded from the store (%d vectors)", loaded)
        return position, (after if after != position else None)
