"""Answers the cache serves before they are durable, and the ids they are stored under.

An answer must be visible to the very next request: a client that gets its answer and at once
asks again (or paraphrases) must hit. Writing to SQLite or Redis takes a millisecond or more and
can stall, so the cache makes a new entry visible in memory first (this module's ``Pending``
map for the exact layer; the FAISS index, which needs the entry's final id, for the semantic
layer) and writes it in the background; once written, the store answers for it.

Final ids before the write: ``IdBlocks`` hands them out from blocks reserved in the store
(``Store.allocate_ids``), refilled in the background well before a block runs out, so taking an
id never waits in the common case and ids stay unique across processes sharing the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable

from sidecache.cache.entries import Entry

__all__ = ["IdBlocks", "Pending"]


class Pending:
    """Entries written to memory and not yet to the store, by key hash and by id.

    Used on the event loop only (no lock).
    """

    def __init__(self) -> None:
        self._by_hash: dict[str, Entry] = {}
        self._by_id: dict[int, Entry] = {}

    def add(self, entry: Entry) -> None:
        old = self._by_hash.get(entry.key_hash)
        if old is not None:
            self._by_id.pop(old.id, None)
        self._by_hash[entry.key_hash] = entry
        self._by_id[entry.id] = entry

    def written(self, entry: Entry) -> None:
        """The store has it now (or gave up on it): stop answering for it from memory."""
        if self._by_id.pop(entry.id, None) is not None and (
            self._by_hash.get(entry.key_hash) is entry
        ):
            del self._by_hash[entry.key_hash]

    def by_hash(self, key_hash: str) -> Entry | None:
        return self._by_hash.get(key_hash)

    def by_id(self, entry_id: int) -> Entry | None:
        return self._by_id.get(entry_id)

    def forget(self, ids: Iterable[int]) -> None:
        """Deleted entries (admin, flush, expiry) stop being served at once."""
        for entry_id in ids:
            entry = self._by_id.pop(entry_id, None)
            if entry is not None and self._by_hash.get(entry.key_hash) is entry:
                del self._by_hash[entry.key_hash]

    def matching(self, namespace: str | None, model: str | None, tenant: str | None) -> list[int]:
        """Ids of pending entries that a flush with these filters removes."""
        return [
            e.id
            for e in self._by_id.values()
            if (namespace is None or e.namespace == namespace)
            and (model is None or e.model == model)
            and (tenant is None or e.tenant == tenant)
        ]

    def __len__(self) -> int:
        return len(self._by_id)


class IdBlocks:
    """Entry ids from blocks reserved in the store; the next block is fetched at half-time."""

    def __init__(self, allocate: Callable[[int], Awaitable[int]], size: int = 1024) -> None:
        self._allocate = allocate
        self.size = size
        self._next = 0
        self._end = 0
        self._spare: tuple[int, int] | None = None
        self._fetching: asyncio.Task[None] | None = None

    async def take(self) -> int:
        """The next id; waits for the store only when no reserved id is left."""
        if self._next >= self._end:
            await self._switch()
        entry_id = self._next
        self._next += 1
        if self._end - self._next < self.size // 2 and self._spare is None:
            self._prefetch()
        return entry_id

    async def _switch(self) -> None:
        while self._next >= self._end:
            if self._spare is None:
                self._prefetch()
                assert self._fetching is not None
                await asyncio.shield(self._fetching)  # raises if the store refused
            if self._spare is not None and self._next >= self._end:
                self._next, self._end = self._spare
                self._spare = None

    def _prefetch(self) -> None:
        if self._fetching is not None and not self._fetching.done():
            return
        self._fetching = asyncio.create_task(self._fetch())
        # A failed prefetch is retried by the next ``take``; its error must not go unread.
        self._fetching.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _fetch(self) -> None:
        first = await self._allocate(self.size)
        self._spare = (first, first + self.size)

    async def aclose(self) -> None:
        if self._fetching is not None:
            self._fetching.cancel()
            with contextlib.suppress(BaseException):
                await self._fetching
