"""Background index rebuilds: a scope's index goes from flat to HNSW past a size, and an HNSW
graph is rebuilt once deletions (tombstones) pile up.

They run on a thread of their own with one OpenMP thread, so searches in every scope go on and
serving keeps the other cores; a scope changed during its build is built again when it ends.
The same thread reloads a replica's whole mirror (``run``), for the same reasons, saves each
new HNSW graph (``snapshots``) before it is swapped in, and folds the side entries of a graph
adopted from a snapshot into it, a few at a time.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sidecache.cache.index import IndexSet
from sidecache.cache.snapshots import IndexSnapshots

__all__ = ["Rebuilds"]

log = logging.getLogger("sidecache.cache")

T = TypeVar("T")


class Rebuilds:
    """Starts and tracks rebuilds of the scopes of whatever index ``current()`` returns."""

    def __init__(self, current: Callable[[], IndexSet | None]) -> None:
        self._current = current
        self._exec = ThreadPoolExecutor(1, thread_name_prefix="sidecache-index-build")
        self._building: dict[str, asyncio.Future[bool]] = {}
        self.completed = 0
        self.closing = False
        self.snapshots: IndexSnapshots | None = None
        self.absorbed = 0

    def schedule(self) -> None:
        """Start a rebuild for every scope that came to need one (cheap: changed scopes only)."""
        index = self._current()
        if index is None:
            return
        for scope in index.pending_rebuilds():
            self._start(scope)
        for scope in index.pending_absorbs():
            self._start(scope, absorb=True)

    def _start(self, scope: str, *, absorb: bool = False) -> None:
        index = self._current()
        if index is None or self.closing or scope in self._building:
            return  # a running build is checked again when it ends (``_done``)
        saving = self.snapshots.save_built(scope) if self.snapshots is not None else None
        work = (
            functools.partial(self._absorb, index, scope)
            if absorb
            else functools.partial(index.rebuild, scope, 1, saving, self._stopping)
        )
        fut = asyncio.get_running_loop().run_in_executor(self._exec, work)
        self._building[scope] = fut
        fut.add_done_callback(functools.partial(self._done, scope))

    def _done(self, scope: str, fut: asyncio.Future[bool]) -> None:
        self._building.pop(scope, None)
        if fut.cancelled():
            return
        if (exc := fut.exception()) is not None:
            log.error("index rebuild of a scope failed: %r", exc)
            return
        self.completed += int(fut.result())
        index = self._current()
        idx = index.get(scope) if index is not None else None
        if idx is not None and idx.needs_rebuild and not self.closing:
            self._start(scope)  # changes made during the build call for another

    def _stopping(self) -> bool:
        return self.closing

    def _absorb(self, index: IndexSet, scope: str) -> bool:
        """Fold a scope's side entries into its graph, a few at a time (searches go on)."""
        idx = index.get(scope)
        while idx is not None and not self.closing and (moved := idx.absorb()):
            self.absorbed += moved
        return False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Other long index work (a mirror reload) on the same thread."""
        return await asyncio.get_running_loop().run_in_executor(self._exec, fn, *args)

    async def wait(self) -> None:
        """Until no rebuild runs (tests, benchmarks, shutdown)."""
        while self._building:
            await asyncio.gather(*list(self._building.values()), return_exceptions=True)

    async def aclose(self) -> None:
        self.closing = True
        await self.wait()
        self._exec.shutdown(wait=True)
