"""The test harness: fake upstream servers and the real gateway, each in its own process.

Imported by tests/conftest.py (as fixtures) and by the benchmarks (as plain helpers).

Everything runs over real loopback HTTP: ``tests/upstream.py`` plays OpenAI-compatible and
Anthropic upstreams (with fault injection), and ``python -m sidecache serve`` is started as a
subprocess with a TOML config, exactly as a user would run it.

Fixtures
    ``upstreams``            session: three OpenAI-kind upstreams "u1", "u2", "u3" (UpstreamSet)
    ``anthropic_upstream``   session: one Anthropic-kind upstream "a1"
    ``upstream_factory``     function: ``start(name, kind="openai") -> Upstream``, stopped after
    ``gateway_factory``      function: ``make(config_text | Path, env=None) -> Gateway``, stopped
    ``basic_config``, ``write_config``   the helper functions below, as fixtures
Session upstreams are reset (and restarted if a test killed them) before every test that uses
them, so a test may ``.control()``, ``.kill()`` or ``.stop()`` them freely.

Plain helpers (``from conftest import basic_config`` also works; this directory is put on
``sys.path``): ``free_port()``, ``start_upstream(name, kind)``, ``write_config(tmp_path, text)``,
``basic_config(upstreams, tmp_path, cache=False, extra="")``, and the classes ``Upstream``,
``UpstreamSet``, ``Gateway``, ``ProcessExited``. Keep this the only ``conftest.py`` under
``tests/``: a nested one would be what ``from conftest import ...`` finds.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, overload

import httpx

if TYPE_CHECKING:
    import openai

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
UPSTREAM_SCRIPT = TESTS_DIR / "upstream.py"
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


# ---------------------------------------------------------------------------------------------
# Fake upstreams.


class Upstream:
    """One ``tests/upstream.py`` process; its control endpoints as methods."""

    def __init__(self, name: str, kind: str = "openai", port: int | None = None) -> None:
        self.name = name
        self.kind = kind
        self.port = port or free_port()
        self._port_fixed = port is not None
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen[bytes] | None = None
        fd, log = tempfile.mkstemp(prefix=f"upstream-{name}-", suffix=".log")
        os.close(fd)
        self.log_path = Path(log)
        self._http: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"Upstream({self.name!r}, {self.kind!r}, {self.url})"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What a provider's ``base_url`` should be: ``/v1`` included for OpenAI, not Anthropic."""
        return self.url + "/v1" if self.kind == "openai" else self.url

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = _local_client()
        return self._http

    def launch(self) -> None:
        """Start the process without waiting for it (see ``wait_ready``)."""
        if self.alive:
            return
        args = [
            sys.executable,
            str(UPSTREAM_SCRIPT),
            *("--port", str(self.port), "--host", self.host),
            *("--name", self.name, "--kind", self.kind),
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        _track(self.proc)

    def wait_ready(self, timeout: float = UPSTREAM_READY_TIMEOUT) -> Upstream:
        def wait() -> None:
            assert self.proc is not None, "launch() first"
            what = f"upstream {self.name}"
            _wait_ready(f"{self.url}/healthz", self.proc, timeout, what, self.log_path)

        self._port_fixed = _retry_port_race(self, wait, self._port_fixed)
        return self

    def start(self, timeout: float = UPSTREAM_READY_TIMEOUT) -> Upstream:
        self.launch()
        return self.wait_ready(timeout)

    def stats(self) -> dict[str, Any]:
        """``{"name", "requests", "by_model", "streams_started", "streams_completed",
        "streams_cancelled", "responses_cut", "requests_cancelled", "errors_injected",
        "in_flight"}``"""
        resp = self.http.get(f"{self.url}/_stats")
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def requests(self, last: int = 10) -> list[dict[str, Any]]:
        """The last requests received, oldest first: ``{"method", "path", "headers", "body"}``.

        Secret headers (authorization, x-api-key) are redacted to their first 6 characters and
        length, e.g. ``"Bearer sk-up1...[6]"``.
        """
        resp = self.http.get(f"{self.url}/_requests", params={"last": last})
        resp.raise_for_status()
        result: list[dict[str, Any]] = resp.json()
        return result

    def last_request(self) -> dict[str, Any]:
        items = self.requests(1)
        assert items, f"upstream {self.name} received no request"
        return items[-1]

    def control(
        self,
        *,
        fail_status: int | None = None,
        retry_after: float | None = None,
        hang: bool = False,
        delay_ms: float = 0,
        count: int | None = None,
    ) -> None:
        """Make the next ``count`` (None: all, until reset) chat requests fail, hang or lag."""
        spec = {
            "fail_status": fail_status,
            "retry_after": retry_after,
            "hang": hang,
            "delay_ms": delay_ms,
            "count": count,
        }
        self.http.post(f"{self.url}/_control", json=spec).raise_for_status()

    def reset(self) -> None:
        """Clear counters, recorded requests and controls; restart the process if it is down."""
        if not self.alive:
            self.restart()
        self.http.post(f"{self.url}/_reset").raise_for_status()

    def stop(self, timeout: float = 5.0) -> None:
        _terminate(self.proc, timeout)

    def kill(self) -> None:
        _kill(self.proc)

    def restart(self, timeout: float = UPSTREAM_READY_TIMEOUT) -> Upstream:
        """Stop if running and start again on the same port (state starts fresh)."""
        self.stop()
        return self.start(timeout)

    def logs(self) -> str:
        return _tail(self.log_path, 1_000_000)

    def close(self) -> None:
        """Stop the process, close the control client, remove the log file."""
        self.stop()
        if self._http is not None:
            self._http.close()
            self._http = None
        self.log_path.unlink(missing_ok=True)


def start_upstream(name: str, kind: str = "openai", port: int | None = None) -> Upstream:
    """Start a fake upstream process and wait for ``/healthz``; the caller stops it."""
    return Upstream(name, kind, port).start()


def start_upstreams(specs: Sequence[tuple[str, str]]) -> list[Upstream]:
    """Start several upstreams in parallel (launch all, then wait for each)."""
    started = [Upstream(name, kind) for name, kind in specs]
    for up in started:
        up.launch()
    try:
        for up in started:
            up.wait_ready()
    except BaseException:
        for up in started:
            up.close()
        raise
    return started


class UpstreamSet(Sequence[Upstream]):
    """Upstreams by position or by name: ``ups[0] is ups["u1"]``."""

    def __init__(self, items: Sequence[Upstream]) -> None:
        self._items = list(items)

    @overload
    def __getitem__(self, key: int | str) -> Upstream: ...

    @overload
    def __getitem__(self, key: slice) -> Sequence[Upstream]: ...

    def __getitem__(self, key: int | str | slice) -> Upstream | Sequence[Upstream]:
        if isinstance(key, str):
            for up in self._items:
                if up.name == key:
                    return up
            raise KeyError(key)
        return self._items[key]

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"UpstreamSet({self._items!r})"

    @property
    def names(self) -> list[str]:
        return [up.name for up in self._items]

    def reset(self) -> None:
        for up in self._items:
            up.reset()

    def stats(self) -> dict[str, dict[str, Any]]:
        return {up.name: up.stats() for up in self._items}

    def total_requests(self) -> int:
        return sum(up.stats()["requests"] for up in self._items)

    def close(self) -> None:
        for up in self._items:
            up.close()


# ---------------------------------------------------------------------------------------------
# The gateway.


class Gateway:
    """``python -m sidecache serve`` in a subprocess, with its output kept in a log file."""

    def __init__(
        self,
        config_path: Path,
        *,
        env: dict[str, str] | None = None,
        port: int | None = None,
        log_path: Path | None = None,
        ready_timeout: float = GATEWAY_READY_TIMEOUT,
    ) -> None:
        self.config_path = Path(config_path)
        self.port = port or free_port()
        self._port_fixed = port is not None
        self.host = "127.0.0.1"
        self.extra_env = dict(env or {})
        self.ready_timeout = ready_timeout
        if log_path is None:
            fd, log = tempfile.mkstemp(prefix="gateway-", suffix=".log")
            os.close(fd)
            log_path = Path(log)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.was_ready = False

    def __repr__(self) -> str:
        return f"Gateway({self.url}, config={self.config_path})"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        src = str(REPO_ROOT / "src")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
        env["HF_HUB_OFFLINE"] = "1"
        env["TRANSFORMERS_OFFLINE"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    def launch(self) -> None:
        if self.alive:
            return
        args = [
            sys.executable,
            *("-m", "sidecache", "serve"),
            *("--config", str(self.config_path)),
            *("--host", self.host, "--port", str(self.port)),
        ]
        with self.log_path.open("ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')} {' '.join(args)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                args,
                cwd=str(REPO_ROOT),
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _track(self.proc)

    def start(self, timeout: float | None = None) -> Gateway:
        """Launch and wait for ``GET /readyz`` == 200 (raises ``ProcessExited`` if it dies)."""
        self.launch()

        def wait() -> None:
            assert self.proc is not None
            limit = self.ready_timeout if timeout is None else timeout
            _wait_ready(f"{self.url}/readyz", self.proc, limit, "gateway", self.log_path)

        self._port_fixed = _retry_port_race(self, wait, self._port_fixed)
        self.was_ready = True
        return self

    def client(
        self, api_key: str = "sk-test", *, timeout: float = 30.0, **kwargs: Any
    ) -> openai.OpenAI:
        """An ``openai.OpenAI`` client on the gateway, with SDK retries off."""
        import openai

        kwargs.setdefault("http_client", openai.DefaultHttpxClient(trust_env=False))
        return openai.OpenAI(
            base_url=self.base_url, api_key=api_key, max_retries=0, timeout=timeout, **kwargs
        )

    def async_client(
        self, api_key: str = "sk-test", *, timeout: float = 30.0, **kwargs: Any
    ) -> openai.AsyncOpenAI:
        """An ``openai.AsyncOpenAI`` client; create it inside the event loop that uses it."""
        import openai

        kwargs.setdefault("http_client", openai.DefaultAsyncHttpxClient(trust_env=False))
        return openai.AsyncOpenAI(
            base_url=self.base_url, api_key=api_key, max_retries=0, timeout=timeout, **kwargs
        )

    def http(self, api_key: str | None = "sk-test", timeout: float = 30.0) -> httpx.Client:
        """A raw httpx client on ``url`` (not ``/v1``); ``Authorization`` when a key is given."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout, trust_env=False)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout``); returns the exit code."""
        return _terminate(self.proc, timeout)

    def kill(self) -> None:
        _kill(self.proc)

    def restart(self, timeout: float | None = None) -> Gateway:
        """Stop gracefully and start again on the same port and config."""
        self.stop()
        return self.start(timeout)

    def logs(self) -> str:
        """Everything the process wrote to stdout and stderr so far (all runs)."""
        return _tail(self.log_path, 10_000_000)


# ---------------------------------------------------------------------------------------------
# Config helpers.


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def write_config(tmp_path: Path, text: str, name: str = "sidecache.toml") -> Path:
    """Write config text into ``tmp_path`` and return its path."""
    path = Path(tmp_path) / name
    path.write_text(text)
    return path


def basic_config(
    upstreams: Sequence[Upstream],
    tmp_path: Path,
    *,
    cache: bool = False,
    extra: str = "",
    server_extra: str = "",
    cache_extra: str = "",
    anthropic: Upstream | None = None,
    upstream_model: str = "gpt-x",
) -> str:
    """A gateway config over the given OpenAI upstreams.

    Providers are named after the upstreams (``u1``, ``u2``, ``u3``, api keys ``sk-up-<name>``),
    alias ``m`` spans all of them (round-robin), alias ``m1`` only the first. ``server_extra`` and
    ``cache_extra`` are lines added inside ``[server]`` and ``[cache]`` (those tables exist
    already, so ``extra`` must not open them again); ``extra`` is appended at the end. With
    ``anthropic``, provider ``a1`` of kind anthropic and alias ``claude`` (model ``claude-x``)
    are added.
    """
    ups = list(upstreams)
    lines = [
        "[server]",
        f"data_dir = {_toml_str(str(Path(tmp_path) / 'data'))}",
        server_extra,
        "",
        "[cache]",
        f"enabled = {'true' if cache else 'false'}",
        cache_extra,
        "",
    ]
    for up in ups:
        lines += [
            f"[providers.{up.name}]",
            'kind = "openai"',
            f"base_url = {_toml_str(up.base_url)}",
            f"api_key = {_toml_str('sk-up-' + up.name)}",
            "",
        ]
    if anthropic is not None:
        lines += [
            f"[providers.{anthropic.name}]",
            'kind = "anthropic"',
            f"base_url = {_toml_str(anthropic.base_url)}",
            f"api_key = {_toml_str('sk-ant-' + anthropic.name)}",
            "",
        ]

    def targets(items: Sequence[Upstream]) -> str:
        return ", ".join(f'{{target = "{u.name}/{upstream_model}"}}' for u in items)

    lines += ["[models.m]", f"targets = [{targets(ups)}]", ""]
    lines += ["[models.m1]", f"targets = [{targets(ups[:1])}]", ""]
    if anthropic is not None:
        lines += ["[models.claude]", f'targets = [{{target = "{anthropic.name}/claude-x"}}]', ""]
    lines.append(extra)
    return "\n".join(lines) + "\n"
