"""Child processes the tests start: free ports, readiness, and nothing left behind."""

from __future__ import annotations

import atexit
import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import httpx

if TYPE_CHECKING:
    pass

TESTS_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = TESTS_DIR.parent
UPSTREAM_READY_TIMEOUT = 20.0
GATEWAY_READY_TIMEOUT = 120.0

if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

_LIVE: set[subprocess.Popen[bytes]] = set()
_ATEXIT = False


def _track(proc: subprocess.Popen[bytes]) -> None:
    """Remember a child so that nothing outlives pytest, even after a crash in a fixture."""
    global _ATEXIT
    _LIVE.add(proc)
    if not _ATEXIT:
        atexit.register(_kill_leftovers)
        _ATEXIT = True


def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


def _local_client(timeout: float = 5.0) -> httpx.Client:
    """An httpx client that never goes through a proxy from the environment."""
    return httpx.Client(timeout=timeout, trust_env=False)


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcessExited(RuntimeError):
    """A server process exited before it became ready; the message ends with its output."""

    def __init__(self, what: str, returncode: int | None, output: str) -> None:
        super().__init__(f"{what} exited with code {returncode} before it was ready:\n{output}")
        self.returncode = returncode
        self.output = output


def _tail(path: Path, limit: int = 20_000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-limit:]


def _wait_ready(
    url: str, proc: subprocess.Popen[bytes], timeout: float, what: str, log: Path
) -> None:
    """Poll ``url`` until it answers 200; fail early, with the output, if the process dies."""
    deadline = time.monotonic() + timeout
    with _local_client(timeout=2.0) as client:
        while True:
            if proc.poll() is not None:
                raise ProcessExited(what, proc.returncode, _tail(log))
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not ready after {timeout:.0f}s:\n{_tail(log)}")
            time.sleep(0.05)


def _terminate(proc: subprocess.Popen[bytes] | None, timeout: float) -> int | None:
    """SIGTERM, wait, then SIGKILL if it would not go."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    _LIVE.discard(proc)
    return proc.returncode


def _kill(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    _LIVE.discard(proc)


class _Launchable(Protocol):
    port: int

    def launch(self) -> None: ...


def _retry_port_race(server: _Launchable, wait: Callable[[], None], fixed: bool) -> bool:
    """Wait for readiness; if a free_port() was taken meanwhile, relaunch on another (3 tries).

    Returns True: from now on the port is the server's own (restarts keep it).
    """
    for attempt in range(3):
        try:
            wait()
            return True
        except ProcessExited as exc:
            if fixed or attempt == 2 or "address already in use" not in exc.output.lower():
                raise
            server.port = free_port()
            server.launch()
    raise AssertionError("unreachable")
