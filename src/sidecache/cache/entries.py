"""What the cache stores, and the interfaces of the places it can store it.

``Entry`` is one cached answer. ``Store`` is what the semantic cache needs from durable storage;
``Subscribable`` is what a store shared by several gateway replicas adds, so that each replica
keeps its FAISS mirror in step. The backends live in their own modules (``sqlite_store``,
``redis_store``) and are opened by name through ``STORE_BACKENDS``, each imported only when
chosen; neither imports the other. Every ``Store`` method may block: the cache calls them from
worker threads.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import msgspec
import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    from sidecache.config import CacheConfig

__all__ = [
    "STORE_BACKENDS",
    "ChangeEvent",
    "ChangeLogGap",
    "Entry",
    "HitBuffer",
    "Store",
    "Subscribable",
    "open_store",
]


class Entry(msgspec.Struct, kw_only=True):
    """One cached answer: its scope and key, the key's vector, and the chat.completion JSON."""

    id: int = 0
    scope: str
    tenant: str
    model: str
    """The model alias the client asked for."""
    namespace: str = ""
    key_text: str
    """The last user turn, as sent (for the verifier and the admin view)."""
    key_hash: str
    """Exact-layer hash: scope + normalised key text."""
    vector: bytes = b""
    """float32 unit vector of ``key_text``; empty when stored without semantic indexing."""
    response: bytes
    """The OpenAI ``chat.completion`` object as JSON."""
    created: float
    expires_at: float | None = None
    last_hit: float = 0.0
    hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def vector_array(self) -> npt.NDArray[np.float32]:
        return np.frombuffer(self.vector, dtype=np.float32)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class Store(Protocol):
    """What the semantic cache needs from durable storage. Every method may block."""

    def allocate_ids(self, n: int) -> int:
        """Reserve ``n`` consecutive entry ids, never handed out again (by any process sharing
        the store); returns the first. The cache takes them in blocks, so an answer can be
        indexed in memory before it is written."""
        ...

    def put(self, entry: Entry) -> int | None:
        """Store durably under ``entry.id`` (from ``allocate_ids``). An entry with the same
        ``key_hash`` under another id is deleted (and announced, for shared stores); its id is
        returned so the caller can drop it from the indexes."""
        ...

    def get(self, entry_id: int) -> Entry | None: ...

    def get_many(self, ids: Iterable[int]) -> list[Entry]: ...

    def get_by_key_hash(self, key_hash: str) -> Entry | None: ...

    def touch(self, entry_id: int, now: float) -> None:
        """Record a hit without waiting for storage (buffered)."""
        ...

    def flush_touches(self) -> None: ...

    def delete(self, ids: Iterable[int]) -> int: ...

    def iter_all(self) -> Iterator[Entry]: ...

    def iter_vectors(self) -> Iterator[tuple[int, str, bytes]]:
        """``(id, scope, vector)`` of every entry that has a vector, for index rebuilds."""
        ...

    def iter_key_hashes(self) -> Iterator[str]:
        """The exact-layer key hash of every entry (so a miss needs no store round trip)."""
        ...

    def iter_ids(self) -> Iterator[tuple[int, str]]:
        """``(id, scope)`` of every entry, without reading vectors or answers: what an index
        loaded from a snapshot is reconciled with."""
        ...

    def vectors(self, ids: Sequence[int]) -> list[tuple[int, str, bytes]]:
        """``(id, scope, vector)`` of these entries (missing ones and ones stored without a
        vector are left out)."""
        ...

    def expired(self, now: float) -> list[int]: ...

    def lru_victims(self, max_entries: int) -> list[int]: ...

    def recent(
        self, limit: int, scope: str | None = None, tenant: str | None = None
    ) -> list[Entry]: ...

    def flush(
        self, namespace: str | None = None, model: str | None = None, tenant: str | None = None
    ) -> list[int]: ...

    def count(self) -> int: ...

    def size_bytes(self) -> int: ...

    def close(self) -> None: ...


class ChangeEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A put or a delete, as a shared store announces it to every replica."""

    position: str
    """Where the event sits in the store's change log (ordered; ``stream_position`` format)."""
    op: Literal["add", "delete"]
    ids: tuple[int, ...]
    """``add``: the one stored id; ``delete``: every id removed by one call."""
    scope: str = ""
    vector: bytes = b""
    """``add``: the float32 unit vector of the key (empty for an entry stored without one)."""
    key_hash: str = ""
    """``add``: the entry's exact-layer key hash."""
    origin: str = ""
    """``replica_id`` of the store that wrote it, so a replica can skip its own changes."""


class ChangeLogGap(RuntimeError):
    """Events after a follower's position were dropped (trimmed) before it read them: the
    replica must reload its indexes from the store."""


@runtime_checkable
class Subscribable(Protocol):
    """A store shared by several replicas, whose changes each replica can follow.

    A replica takes ``stream_position()`` *before* it loads its indexes from the store and then
    applies every event after it: events that the load already saw are harmless to apply again
    (adds skip known ids, deletes ignore unknown ones), and none can fall in a gap.
    """

    replica_id: str

    def stream_position(self) -> str:
        """The position of the newest event (a position before any event if there is none)."""
        ...

    def events_since(self, position: str, block_ms: int) -> tuple[str, list[ChangeEvent]]:
        """Events after ``position``, waiting up to ``block_ms`` for one; returns the new
        position and the events, oldest first. May be called from its own thread. Raises
        ``ChangeLogGap`` when events after ``position`` were lost."""
        ...


class HitBuffer:
    """Hits recorded in memory and written in batches, so serving a hit never waits on a write.

    Thread-safe: the event loop adds, the store's thread takes and writes.
    """

    def __init__(self) -> None:
        self._pending: dict[int, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def add(self, entry_id: int, now: float, hits: int = 1) -> None:
        with self._lock:
            n, last = self._pending.get(entry_id, (0, 0.0))
            self._pending[entry_id] = (n + hits, max(last, now))

    def take(self) -> dict[int, tuple[int, float]]:
        """Everything buffered, as ``{id: (hits, last_hit)}``; the buffer starts empty again."""
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending

    def forget(self, ids: Iterable[int]) -> None:
        with self._lock:
            for i in ids:
                self._pending.pop(i, None)

    def apply(self, entry: Entry) -> Entry:
        """``entry`` with its not-yet-written hits counted in."""
        with self._lock:
            pending = self._pending.get(entry.id)
        if pending:
            entry.hits += pending[0]
            entry.last_hit = max(entry.last_hit, pending[1])
        return entry


Opener = Callable[["CacheConfig", Path], Store]


def _lazy(module: str, function: str) -> Opener:
    """An opener that imports its backend module only when called (redis only when asked for)."""

    def opener(cfg: CacheConfig, data_dir: Path) -> Store:
        open_backend: Opener = getattr(importlib.import_module(module), function)
        return open_backend(cfg, data_dir)

    return opener


STORE_BACKENDS: dict[str, Opener] = {
    "sqlite": _lazy("sidecache.cache.sqlite_store", "open_sqlite"),
    "redis": _lazy("sidecache.cache.redis_store", "open_redis"),
}
"""``cache.store`` name -> opener; a new backend is one more entry."""


def open_store(cfg: CacheConfig, data_dir: str | Path) -> Store:
    """Open the store named by ``cfg.store`` (blocking: it may create files or connect)."""
    return STORE_BACKENDS[cfg.store](cfg, Path(data_dir))
