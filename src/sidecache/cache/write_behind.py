"""Durable writes behind the in-memory put: batched onto the store's one thread.

The cache makes an answer visible in memory at once (``pending``, the FAISS index); the write to
SQLite or Redis follows a few milliseconds later. Waking the store's thread for every answer cost
the event loop more than the write itself (a thread hand-off and the GIL it contends for), so
puts queue here and one job writes whatever arrived within ``WRITE_EVERY`` seconds. Every other
store job drains the queue first (``drain``), so store jobs still run in submission order: a
delete or a flush never overtakes the write of what it deletes.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from sidecache.cache.entries import Entry, Store

__all__ = ["WRITE_EVERY", "WriteBehind"]

WRITE_EVERY = 0.05
"""Seconds a put waits for others to share its trip to the store (the durability window).

At 5 ms a client sending one request after another (a few ms apart) still woke the store's
thread once per answer: measured by process CPU per miss against a bare Starlette + httpx
pass-through (``benchmarks/proxy_overhead.py`` prints both), the gateway used 1.96x the bare
proxy's CPU at 5 ms and 1.41x at 50 ms. A ``kill -9`` within the window loses those
entries (their clients have the answers); a normal stop writes them (``wait``)."""

Outcomes = list[int | BaseException | None]
"""Per entry: the id of an older entry it replaced, None, or the error that kept it out."""


def _put_all(store: Store, batch: list[Entry]) -> Outcomes:
    """Write a batch (blocking, on the store's thread); each entry's outcome, errors included."""
    out: Outcomes = []
    for entry in batch:
        try:
            out.append(store.put(entry))
        except Exception as exc:
            out.append(exc)
    return out


class WriteBehind:
    """Queues entries and writes them in batches; reports each batch's outcomes."""

    def __init__(
        self,
        executor: Executor,
        store: Callable[[], Store],
        written: Callable[[list[Entry], Outcomes], None],
    ) -> None:
        self._executor = executor
        self._store = store
        self._written = written
        self._queued: list[Entry] = []
        self._timer: asyncio.TimerHandle | None = None
        self._jobs: set[asyncio.Future[Any]] = set()

    def queue(self, entry: Entry) -> None:
        self._queued.append(entry)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(WRITE_EVERY, self.drain)

    def drain(self) -> None:
        """Submit what is queued as one job on the store's thread, now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._queued:
            return
        batch, self._queued = self._queued, []
        job = asyncio.get_running_loop().run_in_executor(
            self._executor, _put_all, self._store(), batch
        )
        self._jobs.add(job)
        job.add_done_callback(functools.partial(self._done, batch))

    def _done(self, batch: list[Entry], job: asyncio.Future[Outcomes]) -> None:
        self._jobs.discard(job)
        if job.cancelled():
            results: Outcomes = [asyncio.CancelledError()] * len(batch)
        elif (exc := job.exception()) is not None:
            results = [exc] * len(batch)
        else:
            results = job.result()
        self._written(batch, results)

    def track(self, work: Awaitable[Any]) -> None:
        """Other background work that ``wait`` (and so the cache's close) waits for."""
        task = asyncio.ensure_future(work)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def wait(self) -> None:
        """Until everything queued so far is written (and tracked work done)."""
        self.drain()
        while self._jobs:
            await asyncio.gather(*list(self._jobs), return_exceptions=True)
