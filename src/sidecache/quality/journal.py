"""What the gateway learned about its answers, kept across restarts: ``<data_dir>/quality.db``.

Observations (the estimator's data), threshold changes, audit disagreements waiting for review,
feedback verdicts, the prompt neighbourhoods a bad verdict closed to an entry, and side spend
per UTC day (so a restart does not reopen the day's audit budget). A restart rebuilds every
alias's effective threshold from the observations, so it resumes where it was.

One connection, used only from the side lane's worker thread (the caller's executor), so
writes never block the event loop and never interleave. Prompts and answers in here are as
private as the cache's own: the file is created 0600 in the private data directory.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sidecache.datadir import private_file

__all__ = ["QUALITY_DB", "Journal"]

QUALITY_DB = "quality.db"
KEEP_OBSERVATIONS = 5000
"""Observations kept per alias (the newest): the estimate follows the traffic as it drifts."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS observations (
    alias TEXT NOT NULL, t REAL NOT NULL, similarity REAL NOT NULL, wrong INTEGER NOT NULL,
    source TEXT NOT NULL, request_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS observations_alias ON observations (alias, t);
CREATE TABLE IF NOT EXISTS thresholds (
    alias TEXT NOT NULL, t REAL NOT NULL, threshold REAL NOT NULL, previous REAL NOT NULL,
    rate REAL, upper REAL, n INTEGER NOT NULL, reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audits (
    id INTEGER PRIMARY KEY AUTOINCREMENT, t REAL NOT NULL, alias TEXT NOT NULL,
    tenant TEXT NOT NULL, request_id TEXT NOT NULL, entry_id INTEGER NOT NULL,
    kind TEXT NOT NULL, similarity REAL NOT NULL, prompt TEXT NOT NULL,
    cached_prompt TEXT NOT NULL, cached_answer TEXT NOT NULL, fresh_answer TEXT NOT NULL,
    cosine REAL, contradictions TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    t REAL NOT NULL, alias TEXT NOT NULL, tenant TEXT NOT NULL, key_id TEXT NOT NULL,
    request_id TEXT NOT NULL, entry_id INTEGER NOT NULL, verdict TEXT NOT NULL,
    reason TEXT NOT NULL, similarity REAL NOT NULL, applied TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS blocks (
    key_hash TEXT NOT NULL, scope TEXT NOT NULL, vector BLOB NOT NULL, t REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS side_spend (
    day TEXT NOT NULL, kind TEXT NOT NULL, alias TEXT NOT NULL, usd REAL NOT NULL,
    PRIMARY KEY (day, kind, alias)
);
"""

AUDIT_FIELDS = (
    "id",
    "t",
    "alias",
    "tenant",
    "request_id",
    "entry_id",
    "kind",
    "similarity",
    "prompt",
    "cached_prompt",
    "cached_answer",
    "fresh_answer",
    "cosine",
    "contradictions",
)


class Journal:
    """The quality database. Every method blocks: call them from one worker thread."""

    def __init__(self, data_dir: str | Path) -> None:
        self._db = sqlite3.connect(
            str(private_file(Path(data_dir) / QUALITY_DB)),
            timeout=5.0,
            isolation_level=None,
            check_same_thread=False,
        )
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def _write(self, sql: str, args: Iterable[Any]) -> int:
        with self._lock:
            return int(self._db.execute(sql, tuple(args)).lastrowid or 0)

    # -- writes ------------------------------------------------------------------------------

    def observe(
        self, alias: str, t: float, similarity: float, wrong: bool, source: str, request_id: str
    ) -> None:
        self._write(
            "INSERT INTO observations VALUES (?, ?, ?, ?, ?, ?)",
            (alias, t, similarity, int(wrong), source, request_id),
        )

    def threshold(self, alias: str, change: dict[str, Any]) -> None:
        self._write(
            "INSERT INTO thresholds VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                alias,
                change["t"],
                change["threshold"],
                change["previous"],
                change["rate"],
                change["upper"],
                change["n"],
                change["reason"],
            ),
        )

    def audit(self, record: dict[str, Any]) -> int:
        """Store a disagreement for review; returns its id."""
        fields = AUDIT_FIELDS[1:]
        return self._write(
            f"INSERT INTO audits ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",
            (record[f] for f in fields),
        )

    def feedback(self, record: dict[str, Any]) -> None:
        fields = (
            "t",
            "alias",
            "tenant",
            "key_id",
            "request_id",
            "entry_id",
            "verdict",
            "reason",
            "similarity",
            "applied",
        )
        self._write(
            f"INSERT INTO feedback ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",
            (record[f] for f in fields),
        )

    def block(self, key_hash: str, scope: str, vector: bytes) -> None:
        self._write(
            "INSERT INTO blocks VALUES (?, ?, ?, ?)", (key_hash, scope, vector, time.time())
        )

    def spend(self, day: str, kind: str, alias: str, usd: float) -> None:
        self._write(
            "INSERT INTO side_spend VALUES (?, ?, ?, ?) ON CONFLICT (day, kind, alias)"
            " DO UPDATE SET usd = usd + excluded.usd",
            (day, kind, alias, usd),
        )

    # -- reads -------------------------------------------------------------------------------

    def observations(self) -> dict[str, list[tuple[float, float, bool, str]]]:
        """The newest ``KEEP_OBSERVATIONS`` per alias, oldest first; older ones are deleted."""
        out: dict[str, list[tuple[float, float, bool, str]]] = {}
        with self._lock:
            aliases = [r[0] for r in self._db.execute("SELECT DISTINCT alias FROM observations")]
            for alias in aliases:
                rows = self._db.execute(
                    "SELECT t, similarity, wrong, source FROM observations WHERE alias = ?"
                    " ORDER BY t DESC LIMIT ?",
                    (alias, KEEP_OBSERVATIONS),
                ).fetchall()
                if len(rows) == KEEP_OBSERVATIONS:
                    self._db.execute(
                        "DELETE FROM observations WHERE alias = ? AND t < ?", (alias, rows[-1][0])
                    )
                out[alias] = [(t, s, bool(w), src) for t, s, w, src in reversed(rows)]
        return out

    def thresholds(self, limit: int) -> dict[str, list[dict[str, Any]]]:
        """The last ``limit`` threshold changes per alias, oldest first."""
        out: dict[str, list[dict[str, Any]]] = {}
        with self._lock:
            rows = self._db.execute(
                "SELECT alias, t, threshold, previous, rate, upper, n, reason FROM thresholds"
                " ORDER BY t"
            ).fetchall()
        for alias, t, thr, prev, rate, upper, n, reason in rows:
            changes = out.setdefault(alias, [])
            changes.append(
                {
                    "t": t,
                    "threshold": thr,
                    "previous": prev,
                    "rate": rate,
                    "upper": upper,
                    "n": n,
                    "reason": reason,
                }
            )
            del changes[:-limit]
        return out

    def audits(self, limit: int, alias: str | None = None) -> list[dict[str, Any]]:
        """Disagreements, newest first."""
        sql = f"SELECT {', '.join(AUDIT_FIELDS)} FROM audits"
        args: tuple[Any, ...] = ()
        if alias:
            sql += " WHERE alias = ?"
            args = (alias,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [dict(zip(AUDIT_FIELDS, row, strict=True)) for row in rows]

    def blocks(self) -> list[tuple[str, str, bytes]]:
        with self._lock:
            rows = self._db.execute("SELECT key_hash, scope, vector FROM blocks").fetchall()
        return [(str(k), str(s), bytes(v)) for k, s, v in rows]

    def spent(self, day: str) -> dict[tuple[str, str], float]:
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, alias, usd FROM side_spend WHERE day = ?", (day,)
            ).fetchall()
        return {(str(k), str(a)): float(u) for k, a, u in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()
