"""Durable storage of cache entries: the ``Store`` protocol and its SQLite implementation.

Why SQLite: the embedded gateway must survive a restart (or a ``kill -9``) without losing
answers it paid for, and rebuild its FAISS indexes from what is on disk. WAL mode lets reads go on
while a write commits; ``synchronous=NORMAL`` in WAL mode makes every committed transaction
durable against a process crash (only a power cut can lose the last ones), so ``put`` commits
before it returns.

Hits must not wait on the disk: ``touch`` only records the hit in memory, and the buffered hit
counts and LRU times are written by the next write or by the cache's background sweeper.

The shared (Redis) backend, ``redis_store.RedisStore``, is another class meeting ``Store``; the
semantic cache only ever talks to the protocol, and ``open_store`` picks the backend named in the
config from ``STORE_BACKENDS``. A store shared by several gateway replicas also meets
``Subscribable``: it reports every put and delete as a ``ChangeEvent``, so each replica keeps its
FAISS mirror in step. All methods block; the cache calls them from worker threads.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import msgspec
import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    from sidecache.config import CacheConfig

__all__ = [
    "STORE_BACKENDS",
    "CacheStore",
    "ChangeEvent",
    "ChangeLogGap",
    "Entry",
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

    def put(self, entry: Entry) -> int:
        """Store durably and return the id; an entry with the same ``key_hash`` is replaced
        in place and keeps its id."""
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
    """``add``: the float32 unit vector of the key (events are only sent for indexed entries)."""
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


_FIELDS = tuple(Entry.__struct_fields__)
_COLS = ", ".join(_FIELDS)
_INSERT_COLS = [f for f in _FIELDS if f != "id"]
_UPDATE_ON_CONFLICT = ", ".join(
    f"{f} = excluded.{f}" for f in _INSERT_COLS if f not in ("key_hash", "hits", "last_hit")
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    scope             TEXT NOT NULL,
    tenant            TEXT NOT NULL,
    model             TEXT NOT NULL,
    namespace         TEXT NOT NULL DEFAULT '',
    key_text          TEXT NOT NULL,
    key_hash          TEXT NOT NULL UNIQUE,
    vector            BLOB NOT NULL,
    response          BLOB NOT NULL,
    created           REAL NOT NULL,
    expires_at        REAL,
    last_hit          REAL NOT NULL,
    hits              INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd          REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS entries_expires ON entries (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_last_hit ON entries (last_hit);
CREATE INDEX IF NOT EXISTS entries_tenant ON entries (tenant);
CREATE INDEX IF NOT EXISTS entries_ns_model ON entries (namespace, model);
PRAGMA user_version = 1;
"""


def _row(row: tuple[Any, ...]) -> Entry:
    return Entry(**dict(zip(_FIELDS, row, strict=True)))


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


class CacheStore:
    """SQLite (WAL) store: one connection shared behind a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None, timeout=5.0
        )
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA temp_store = MEMORY")
        self._db.executescript(_SCHEMA)
        self._hits = HitBuffer()
        self._closed = False
        (self._count,) = self._db.execute("SELECT count(*) FROM entries").fetchone()

    # -- writes ------------------------------------------------------------------------------

    def put(self, entry: Entry) -> int:
        values = [getattr(entry, f) for f in _INSERT_COLS]
        if not entry.last_hit:
            values[_INSERT_COLS.index("last_hit")] = entry.created
        sql = (
            f"INSERT INTO entries ({', '.join(_INSERT_COLS)}) "
            f"VALUES ({', '.join('?' * len(_INSERT_COLS))}) "
            f"ON CONFLICT (key_hash) DO UPDATE SET {_UPDATE_ON_CONFLICT} RETURNING id"
        )
        with self._lock:
            self._write_touches()
            known = self._db.execute(
                "SELECT 1 FROM entries WHERE key_hash = ?", (entry.key_hash,)
            ).fetchone()
            row = self._db.execute(sql, values).fetchone()
            if known is None:
                self._count += 1
        return int(row[0])

    def touch(self, entry_id: int, now: float) -> None:
        self._hits.add(entry_id, now)

    def flush_touches(self) -> None:
        with self._lock:
            self._write_touches()

    def _write_touches(self) -> None:
        """Write buffered hits (caller holds ``_lock``)."""
        pending = self._hits.take()
        if not pending:
            return
        self._db.executemany(
            "UPDATE entries SET hits = hits + ?, last_hit = max(last_hit, ?) WHERE id = ?",
            [(n, t, i) for i, (n, t) in pending.items()],
        )

    def delete(self, ids: Iterable[int]) -> int:
        id_list = [(int(i),) for i in ids]
        if not id_list:
            return 0
        with self._lock:
            self._write_touches()
            self._db.execute("BEGIN")
            try:
                before = self._db.total_changes
                self._db.executemany("DELETE FROM entries WHERE id = ?", id_list)
                deleted = self._db.total_changes - before
                self._db.execute("COMMIT")
                self._count -= deleted
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self._hits.forget(i for (i,) in id_list)
        return deleted

    def flush(
        self, namespace: str | None = None, model: str | None = None, tenant: str | None = None
    ) -> list[int]:
        """Delete the entries matching every given filter (none given: all); return their ids."""
        where, args = [], []
        for col, val in (("namespace", namespace), ("model", model), ("tenant", tenant)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            ids = [r[0] for r in self._db.execute(f"SELECT id FROM entries{clause}", args)]
        self.delete(ids)
        return ids

    # -- reads -------------------------------------------------------------------------------

    def _pending_hits(self, entry: Entry) -> Entry:
        return self._hits.apply(entry)

    def get(self, entry_id: int) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLS} FROM entries WHERE id = ?", (entry_id,)
            ).fetchone()
        return self._pending_hits(_row(row)) if row else None

    def get_many(self, ids: Iterable[int]) -> list[Entry]:
        """Entries for these ids, in the order asked; missing ids are left out."""
        id_list = [int(i) for i in ids]
        if not id_list:
            return []
        marks = ", ".join("?" * len(id_list))
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLS} FROM entries WHERE id IN ({marks})", id_list
            ).fetchall()
        found = {r[0]: r for r in rows}
        return [self._pending_hits(_row(found[i])) for i in id_list if i in found]

    def get_by_key_hash(self, key_hash: str) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLS} FROM entries WHERE key_hash = ?", (key_hash,)
            ).fetchone()
        return self._pending_hits(_row(row)) if row else None

    def _pages(self, columns: str, where: str = "", size: int = 1000) -> Iterator[tuple[Any, ...]]:
        """Keyset pagination, so the lock is never held across a consumer's work."""
        last = -1
        while True:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT {columns} FROM entries WHERE id > ? {where} ORDER BY id LIMIT ?",
                    (last, size),
                ).fetchall()
            if not rows:
                return
            yield from rows
            last = rows[-1][0]

    def iter_all(self) -> Iterator[Entry]:
        for row in self._pages(_COLS):
            yield _row(row)

    def iter_vectors(self) -> Iterator[tuple[int, str, bytes]]:
        for i, scope, vec in self._pages("id, scope, vector", "AND length(vector) > 0", 5000):
            yield int(i), str(scope), bytes(vec)

    def expired(self, now: float) -> list[int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)
            ).fetchall()
        return [r[0] for r in rows]

    def lru_victims(self, max_entries: int) -> list[int]:
        """Least recently hit entries beyond ``max_entries`` (buffered hits count)."""
        with self._lock:
            self._write_touches()
            excess = self._count - max_entries
            if excess <= 0:
                return []
            rows = self._db.execute(
                "SELECT id FROM entries ORDER BY last_hit, id LIMIT ?", (excess,)
            ).fetchall()
        return [r[0] for r in rows]

    def recent(
        self, limit: int, scope: str | None = None, tenant: str | None = None
    ) -> list[Entry]:
        """Newest entries first, optionally of one scope and/or tenant."""
        where, args = [], []
        for col, val in (("scope", scope), ("tenant", tenant)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLS} FROM entries{clause} ORDER BY id DESC LIMIT ?", [*args, limit]
            ).fetchall()
        return [self._pending_hits(_row(r)) for r in rows]

    def count(self) -> int:
        """Number of entries (kept in memory: no query)."""
        return int(self._count)

    def size_bytes(self) -> int:
        """Bytes on disk: the database and its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += Path(f"{self.path}{suffix}").stat().st_size
        return total

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._write_touches()
            self._db.execute("PRAGMA optimize")
            self._db.close()
            self._closed = True


# -- backends ------------------------------------------------------------------------------------


def _open_sqlite(cfg: CacheConfig, data_dir: Path) -> Store:
    return CacheStore(data_dir / "cache.db")


def _open_redis(cfg: CacheConfig, data_dir: Path) -> Store:
    from sidecache.cache.redis_store import RedisStore  # the redis client only when asked for

    return RedisStore.from_config(cfg.redis)


STORE_BACKENDS: dict[str, Callable[[CacheConfig, Path], Store]] = {
    "sqlite": _open_sqlite,
    "redis": _open_redis,
}
"""``cache.store`` name -> opener; a new backend is one more entry."""


def open_store(cfg: CacheConfig, data_dir: str | Path) -> Store:
    """Open the store named by ``cfg.store`` (blocking: it may create files or connect)."""
    return STORE_BACKENDS[cfg.store](cfg, Path(data_dir))
