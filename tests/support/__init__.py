"""Test support: real processes and the helpers the tests and the benchmarks share.

Importable as ``support`` because ``tests/`` is on ``sys.path`` (``conftest.py`` and the
benchmarks put it there). Everything runs over real loopback HTTP: ``support.fake_upstream``
plays OpenAI-compatible and Anthropic upstreams (with fault injection), and
``python -m sidecache serve`` is started as a subprocess with a TOML config, exactly as a user
would run it.

    processes      free ports, readiness, nothing left running after pytest
    upstreams      ``Upstream`` (one fake upstream process), ``UpstreamSet``, ``start_upstream(s)``
    gateway        ``Gateway`` (the real gateway process), ``basic_config``, ``write_config``
    fake_upstream  the fake upstream server itself (run as ``python -m support.fake_upstream``)
    redis_server   a real ``redis-server`` and its fixtures
    chromium       headless Chromium over the DevTools protocol, for the dashboard
    stores         helpers for tests that drive a cache ``Store`` directly
    counters       waiting on a gateway's own counters instead of sleeping
"""

from support.gateway import Gateway, basic_config, start_gateways, write_config
from support.processes import GATEWAY_READY_TIMEOUT, REPO_ROOT, ProcessExited, free_port
from support.upstreams import Upstream, UpstreamSet, start_upstream, start_upstreams

__all__ = [
    "GATEWAY_READY_TIMEOUT",
    "REPO_ROOT",
    "Gateway",
    "ProcessExited",
    "Upstream",
    "UpstreamSet",
    "basic_config",
    "free_port",
    "start_gateways",
    "start_upstream",
    "start_upstreams",
    "write_config",
]
