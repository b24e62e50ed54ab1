"""Fake upstream processes (``support.fake_upstream``), one per provider a test needs."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import httpx

if TYPE_CHECKING:
    pass


from support.processes import (
    TESTS_DIR,
    UPSTREAM_READY_TIMEOUT,
    _kill,
    _local_client,
    _retry_port_race,
    _tail,
    _terminate,
    _track,
    _wait_ready,
    free_port,
)


class Upstream:
    """One ``support.fake_upstream`` process; its control endpoints as methods."""

    def __init__(
        self, name: str, kind: str = "openai", port: int | None = None, answers: Path | None = None
    ) -> None:
        """``answers``: a labelled-answers file (``support.fake_upstream.answers``)."""
        self.name = name
        self.kind = kind
        self.answers = answers
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
            *("-m", "support.fake_upstream"),
            *("--port", str(self.port), "--host", self.host),
            *("--name", self.name, "--kind", self.kind),
            *(("--answers", str(self.answers)) if self.answers is not None else ()),
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(TESTS_DIR), env.get("PYTHONPATH", "")) if p
        )
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
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
        fail_rate: float = 0.0,
    ) -> None:
        """Make the next ``count`` (None: all, until reset) chat requests fail, hang or lag;
        with ``fail_rate``, only that share of them fails (at random, seeded)."""
        spec = {
            "fail_status": fail_status,
            "retry_after": retry_after,
            "hang": hang,
            "delay_ms": delay_ms,
            "count": count,
            "fail_rate": fail_rate,
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
