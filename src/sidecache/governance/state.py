"""The governance state database: one SQLite file, ``<data_dir>/state.db``, in WAL mode.

Keys and spend live in the same file so a gateway and the ``sidecache keys`` command (another
process) see one truth. WAL lets readers and the single writer proceed together; the busy
timeout makes a second writer wait briefly instead of failing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sidecache.datadir import private_file

STATE_DB = "state.db"


def open_state_db(data_dir: str | Path) -> sqlite3.Connection:
    """Open (and create) ``<data_dir>/state.db`` with WAL and a busy timeout.

    The connection may be used from several threads (``check_same_thread=False``); callers
    serialise access with their own lock.
    """
    conn = sqlite3.connect(
        private_file(Path(data_dir) / STATE_DB),
        timeout=5.0,
        isolation_level=None,  # autocommit; explicit BEGIN where a transaction matters
        check_same_thread=False,
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn
