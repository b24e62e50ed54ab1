"""The gateway under test: ``python -m sidecache serve`` in a subprocess, and its config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import anthropic
    import openai


from support.processes import (
    GATEWAY_READY_TIMEOUT,
    REPO_ROOT,
    _kill,
    _retry_port_race,
    _tail,
    _terminate,
    _track,
    _wait_ready,
    free_port,
)
from support.upstreams import Upstream


class Gateway:
    """``python -m sidecache serve`` in a subprocess, with its output kept in a log file."""

    def __init__(
        self,
        config_path: Path | None,
        *,
        env: dict[str, str] | None = None,
        port: int | None = None,
        log_path: Path | None = None,
        ready_timeout: float = GATEWAY_READY_TIMEOUT,
        cwd: Path | None = None,
    ) -> None:
        """``cwd``: the working directory (relative ``data_dir`` paths land there); default the
        repository root."""
        self.config_path = Path(config_path) if config_path is not None else None
        """``None``: started with no ``--config``, as ``sidecache serve`` alone (pass-through
        mode from the environment)."""
        self.cwd = cwd or REPO_ROOT
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
            *(("--config", str(self.config_path)) if self.config_path is not None else ()),
            *("--host", self.host, "--port", str(self.port)),
        ]
        with self.log_path.open("ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')} {' '.join(args)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                args,
                cwd=str(self.cwd),
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

    def anthropic_client(
        self, api_key: str | None = "sk-test", *, timeout: float = 30.0, **kwargs: Any
    ) -> anthropic.Anthropic:
        """An ``anthropic.Anthropic`` client on the gateway (``base_url`` is the host, as the SDK
        adds ``/v1``), with SDK retries off; the key goes as ``x-api-key`` unless ``auth_token``
        is given instead."""
        import anthropic

        kwargs.setdefault("http_client", anthropic.DefaultHttpxClient(trust_env=False))
        return anthropic.Anthropic(
            base_url=self.url, api_key=api_key, max_retries=0, timeout=timeout, **kwargs
        )

    def async_anthropic_client(
        self, api_key: str | None = "sk-test", *, timeout: float = 30.0, **kwargs: Any
    ) -> anthropic.AsyncAnthropic:
        """An ``anthropic.AsyncAnthropic`` client; create it inside the event loop that uses it."""
        import anthropic

        kwargs.setdefault("http_client", anthropic.DefaultAsyncHttpxClient(trust_env=False))
        return anthropic.AsyncAnthropic(
            base_url=self.url, api_key=api_key, max_retries=0, timeout=timeout, **kwargs
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

    def access_lines(
        self, until: Callable[[list[dict[str, Any]]], bool] | None = None, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """The access log so far (one JSON object per request), once ``until`` holds for it.

        The gateway writes these lines from a thread of their own, a few milliseconds after the
        answer went out: a test that looks for a request's line waits for it, never sleeps.
        """

        def lines() -> list[dict[str, Any]]:
            return [
                json.loads(line) for line in self.logs().splitlines() if line.startswith('{"ts"')
            ]

        deadline = time.monotonic() + timeout
        docs = lines()
        while until is not None and not until(docs) and time.monotonic() < deadline:
            time.sleep(0.01)
            docs = lines()
        return docs


def start_gateways(gateways: list[Gateway]) -> list[Gateway]:
    """Start several gateways in parallel (launch all, then wait for each): replicas of one
    fleet come up together, as behind a load balancer."""
    for gw in gateways:
        gw.launch()
    for gw in gateways:
        gw.start()
    return gateways


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
