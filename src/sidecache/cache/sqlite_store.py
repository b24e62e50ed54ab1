"""The embedded store: cache entries in SQLite under the data directory (one machine).

Why SQLite: the embedded gateway must survive a restart (or a ``kill -9``) without losing
answers it paid for, and rebuild its FAISS indexes from what is on disk. WAL mode lets reads go on
while a write commits; ``synchronous=NORMAL`` in WAL mode makes every committed transaction
durable against a process crash (only a power cut can lose the last ones), so ``put`` commits
before it returns. The cache makes an answer visible in memory first and writes it here in the
background, so no client waits for the disk.

Hits must not wait on the disk either: ``touch`` only records the hit in memory, and the buffered
hit counts and LRU times are written by the next write or by the cache's background sweeper.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sidecache.cache.entries import Entry, HitBuffer, Store
from sidecache.datadir import private_file

if TYPE_CHECKING:
    from sidecache.config import CacheConfig

__all__ = ["SqliteStore", "open_sqlite"]


_FIELDS = tuple(Entry.__struct_fields__)
_COLS = ", ".join(_FIELDS)
_REPLACE = f"INSERT OR REPLACE INTO entries ({_COLS}) VALUES ({', '.join('?' * len(_FIELDS))})"

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
CREATE INDEX IF NOT EXISTS entries_scope_id ON entries (scope, id);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
PRAGMA user_version = 2;
"""


def _row(row: tuple[Any, ...]) -> Entry:
    return Entry(**dict(zip(_FIELDS, row, strict=True)))


class SqliteStore:
    """SQLite (WAL) store: one connection shared behind a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = private_file(path)
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

    def allocate_ids(self, n: int) -> int:
        """Reserve ``n`` ids in one short transaction (other processes on this file too)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT value FROM counters WHERE name = 'next_id'"
                ).fetchone()
                if row is None:  # a file from before id blocks: continue after its ids
                    (first,) = self._db.execute(
                        "SELECT max(coalesce((SELECT max(id) FROM entries), 0),"
                        " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'entries'), 0))"
                        " + 1"
                    ).fetchone()
                else:
                    first = row[0]
                self._db.execute(
                    "INSERT INTO counters (name, value) VALUES ('next_id', ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (first + n,),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(first)

    def put(self, entry: Entry) -> int | None:
        if entry.id <= 0:
            raise ValueError("Entry.id must come from allocate_ids")
        values = [getattr(entry, f) for f in _FIELDS]
        if not entry.last_hit:
            values[_FIELDS.index("last_hit")] = entry.created
        with self._lock:
            same = self._db.execute("SELECT 1 FROM entries WHERE id = ?", (entry.id,)).fetchone()
            other = self._db.execute(
                "SELECT id FROM entries WHERE key_hash = ? AND id != ?", (entry.key_hash, entry.id)
            ).fetchone()
            # REPLACE deletes whatever row conflicts: this id (a retried put), or the older
            # answer to the same key.
            self._db.execute(_REPLACE, values)
            self._count += 1 - (same is not None) - (other is not None)
            self._write_touches()  # after: hits on this entry while it was being written count
        if other is None:
            return None
        self._hits.forget([int(other[0])])
        return int(other[0])

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

    def iter_key_hashes(self) -> Iterator[str]:
        """From the key-hash index alone (a table scan would read every answer and vector)."""
        last = ""
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT key_hash FROM entries WHERE key_hash > ? ORDER BY key_hash LIMIT ?",
                    (last, 20_000),
                ).fetchall()
            if not rows:
                return
            for (key_hash,) in rows:
                yield str(key_hash)
            last = rows[-1][0]

    def iter_ids(self) -> Iterator[tuple[int, str]]:
        """``(id, scope)`` of every entry, from the ``(scope, id)`` index alone; entries stored
        without a vector are listed too (``vectors`` leaves them out)."""
        scope, last = "", -1
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT scope, id FROM entries WHERE (scope, id) > (?, ?)"
                    " ORDER BY scope, id LIMIT ?",
                    (scope, last, 50_000),
                ).fetchall()
            if not rows:
                return
            for s, i in rows:
                yield int(i), str(s)
            scope, last = rows[-1]

    def vectors(self, ids: Sequence[int]) -> list[tuple[int, str, bytes]]:
        """``(id, scope, vector)`` of these entries that exist and have a vector."""
        out: list[tuple[int, str, bytes]] = []
        for start in range(0, len(ids), 5000):
            chunk = [int(i) for i in ids[start : start + 5000]]
            marks = ", ".join("?" * len(chunk))
            with self._lock:
                rows = self._db.execute(
                    f"SELECT id, scope, vector FROM entries WHERE id IN ({marks})", chunk
                ).fetchall()
            out += [(int(i), str(s), bytes(v)) for i, s, v in rows if v]
        return out

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


def open_sqlite(cfg: CacheConfig, data_dir: Path) -> Store:
    """``cache.store = "sqlite"``: ``<data_dir>/cache.db``."""
    return SqliteStore(data_dir / "cache.db")
