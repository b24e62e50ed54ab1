"""pytest fixtures over ``tests/support`` (fake upstreams, the real gateway).

Fixtures
    ``upstreams``            session: three OpenAI-kind upstreams "u1", "u2", "u3" (UpstreamSet)
    ``anthropic_upstream``   session: one Anthropic-kind upstream "a1"
    ``upstream_factory``     function: ``start(name, kind="openai", port=None, answers=None)``
                             -> Upstream (``answers``: a labelled-answers file), stopped after
    ``gateway_factory``      function: ``make(config_text | Path, env=None) -> Gateway``, stopped
    ``basic_config``, ``write_config``   the helper functions, as fixtures
Session upstreams are reset (and restarted if a test killed them) before every test that uses
them. Tests import plain helpers with ``from support import ...``.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# this checkout's code, whichever checkout an editable install points at (worktrees share one
# Python; gateways started by the tests get the same ``src`` through PYTHONPATH)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from support import (
    GATEWAY_READY_TIMEOUT,
    Gateway,
    Upstream,
    UpstreamSet,
    basic_config,
    write_config,
)
from support.processes import _tail
from support.upstreams import start_upstream, start_upstreams

# ---------------------------------------------------------------------------------------------
# Fixtures.


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    rep = getattr(request.node, "rep_call", None)
    return rep is None or rep.failed


@pytest.fixture(scope="session")
def upstreams() -> Iterator[UpstreamSet]:
    """Three OpenAI-kind fake upstreams named u1, u2, u3 (reset before each test)."""
    ups = UpstreamSet(start_upstreams([("u1", "openai"), ("u2", "openai"), ("u3", "openai")]))
    yield ups
    ups.close()


@pytest.fixture(scope="session")
def anthropic_upstream() -> Iterator[Upstream]:
    """One Anthropic-kind fake upstream named a1 (reset before each test)."""
    up = start_upstream("a1", "anthropic")
    yield up
    up.close()


@pytest.fixture(autouse=True)
def _reset_session_upstreams(request: pytest.FixtureRequest) -> None:
    """Give every test clean session upstreams, without starting them for tests that don't ask."""
    if "upstreams" in request.fixturenames:
        request.getfixturevalue("upstreams").reset()
    if "anthropic_upstream" in request.fixturenames:
        request.getfixturevalue("anthropic_upstream").reset()


@pytest.fixture
def upstream_factory() -> Iterator[Callable[..., Upstream]]:
    """``start(name, kind="openai") -> Upstream``; everything started is stopped after the test."""
    started: list[Upstream] = []

    def start(
        name: str, kind: str = "openai", port: int | None = None, answers: Path | None = None
    ) -> Upstream:
        up = Upstream(name, kind, port, answers)
        started.append(up)
        return up.start()

    yield start
    for up in started:
        up.close()


@pytest.fixture
def gateway_factory(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Gateway]]:
    """``make(config_text_or_path, env=None, *, port=None, start=True) -> Gateway``.

    The config text is written to ``tmp_path``; every gateway is stopped after the test, and when
    the test failed the end of its output is printed (pytest shows it under the failure).
    """
    started: list[Gateway] = []
    counter = itertools.count(1)

    def make(
        config: str | Path,
        env: dict[str, str] | None = None,
        *,
        port: int | None = None,
        start: bool = True,
        ready_timeout: float = GATEWAY_READY_TIMEOUT,
    ) -> Gateway:
        n = next(counter)
        path = config if isinstance(config, Path) else write_config(tmp_path, config, f"gw{n}.toml")
        gw = Gateway(
            path, env=env, port=port, log_path=tmp_path / f"gw{n}.log", ready_timeout=ready_timeout
        )
        started.append(gw)
        return gw.start() if start else gw

    yield make
    failed = _failed(request)
    for gw in started:
        code = gw.stop()
        if failed and gw.was_ready:  # else ProcessExited already carried the output
            print(
                f"\n===== {gw!r} exit code {code}; output (tail) =====\n{_tail(gw.log_path, 8000)}"
            )


@pytest.fixture
def both_kinds_gateway(
    upstreams: UpstreamSet,
    anthropic_upstream: Upstream,
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
) -> Callable[[str], Gateway]:
    """``make(extra_toml) -> Gateway``: the cache on, the OpenAI-compatible upstreams (aliases
    ``m``, ``m1``) and the Anthropic one (alias ``claude``), plus ``extra_toml`` (prices)."""

    def make(extra: str = "") -> Gateway:
        config = basic_config(
            upstreams, tmp_path, cache=True, anthropic=anthropic_upstream, extra=extra
        )
        return gateway_factory(config)

    return make


@pytest.fixture(name="basic_config")
def _basic_config_fixture() -> Callable[..., str]:
    """The ``basic_config`` helper as a fixture (see the function)."""
    return basic_config


@pytest.fixture(name="write_config")
def _write_config_fixture() -> Callable[..., Path]:
    """The ``write_config`` helper as a fixture (see the function)."""
    return write_config
