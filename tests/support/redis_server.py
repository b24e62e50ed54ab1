"""A real ``redis-server`` for the tests: loopback, a free port, no persistence, a temp dir.

Plain helpers, not a conftest (``tests/conftest.py`` stays the only one): a test module brings
the fixtures in with ``from redis_server import redis_server, redis_prefix``. Without the
``redis-server`` binary (Debian/Ubuntu package ``redis-server``) every test that asks for them
is skipped.

    ``redis_server``   session: one ``RedisServer``; tests keep apart by key prefix
    ``redis_prefix``   function: a fresh key prefix, e.g. ``"t3f9a1c2:"``
    ``RedisServer``    ``start()``, ``stop()``, ``url``, ``port``; restartable on its port
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.processes import free_port

__all__ = ["RedisServer", "redis_prefix", "redis_server", "require_redis_server"]

READY_TIMEOUT = 10.0


def require_redis_server() -> str:
    """The ``redis-server`` binary, or skip the test."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return binary


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1; ``stop()`` and ``start()`` keep the port."""

    def __init__(self, port: int | None = None, *, persist: bool = False) -> None:
        """``persist``: an append-only file written at every command, so a server killed and
        started again comes back with its data (as a production Redis holding keys should)."""
        self.binary = require_redis_server()
        self.persist = persist
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="redis-test-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        if self.proc is not None and self.proc.poll() is None:
            return self
        args = [
            self.binary,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--dir", str(self.dir)),
            *(
                ("--appendonly", "yes", "--appendfsync", "always")
                if self.persist
                else ("--appendonly", "no")
            ),
            *("--protected-mode", "yes", "--loglevel", "warning"),
        ]
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                output = (self.dir / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server exited ({self.proc.returncode}):\n{output}")
            if self._pong():
                return self
            if time.monotonic() > deadline:
                raise TimeoutError(f"redis-server not ready on port {self.port}")
            time.sleep(0.02)

    def _pong(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
        ):
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections but answers nothing (a stuck Redis)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, as a crash: ``start()`` brings it back on the same port."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of its own for each test, so tests sharing the server never meet."""
    return f"t{uuid.uuid4().hex[:8]}:"
