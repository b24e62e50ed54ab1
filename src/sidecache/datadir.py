"""The data directory holds prompts, answers, key hashes and spend: it is private to its owner.

The directory is created 0700 and every database in it 0600 (SQLite gives its ``-wal`` and
``-shm`` files the mode of the database file). An existing directory with looser modes is
tightened, since a gateway is often started once by hand with a permissive umask.
"""

from __future__ import annotations

import os
from pathlib import Path

from sidecache.errors import ConfigError

__all__ = ["private_dir", "private_file"]


def private_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) if needed, owner-only; returns it."""
    directory = Path(path)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if directory.stat().st_mode & 0o077:
            directory.chmod(0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create the data directory {directory}: {exc.strerror}") from exc
    return directory


def private_file(path: str | Path) -> Path:
    """Create ``path`` empty if absent, owner read/write only, in a private directory.

    An existing file is never opened here, only chmod-ed: closing any descriptor of a SQLite
    database drops every POSIX lock this process holds on it, which leaves the process's other
    connections reading a stale snapshot.
    """
    file = Path(path)
    private_dir(file.parent)
    try:
        fd = os.open(file, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    except FileExistsError:
        if file.stat().st_mode & 0o077:
            file.chmod(0o600)
    else:
        os.close(fd)
    return file
