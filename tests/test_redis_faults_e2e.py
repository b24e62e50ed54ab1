"""Redis stopped under load, then brought back: a policy, not an accident.

Two gateway replicas share one real ``redis-server`` for everything (cache entries, keys, rate
limits, budgets). Clients keep a steady load on both; mid-traffic Redis is stopped for 5 s,
once frozen (SIGSTOP: connections stay open and nothing answers, the worst case) and once
killed (connections refused), then brought back. What must hold, counted from the clients:

- no request is answered with a 5xx because of it (cache lookups become misses);
- nothing waits much longer than ``[redis] timeout_seconds`` on it;
- limits and budgets behave as ``limits.on_redis_down`` documents: ``open`` falls back to each
  replica's own buckets and to each replica's share of what was left of a budget (the fleet
  never spends past the budget by more than one estimate per replica); ``closed`` refuses the
  requests of keys that have a limit or a budget (429), never admitting one while Redis is away;
- once Redis is back, the spend counted during the outage reaches it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
from support import Gateway, UpstreamSet, basic_config, start_gateways, write_config
from support.counters import wait_for
from support.keys import Key, create_key
from support.redis_server import RedisServer

ADMIN = "sk-admin-faults"
TIMEOUT = 0.5  # [redis] timeout_seconds
ONNX_DIR = Path(
    os.environ.get("SIDECACHE_TEST_ONNX_DIR", Path.home() / ".cache" / "sidecache-test" / "onnx")
)
# Three-word prompts get five-token answers: $200,000 per million output tokens is $1 each.
DOLLAR_AN_ANSWER = '[pricing."gpt-x"]\ninput = 0.0\noutput = 200000.0\n'
BUDGET = 40.0
RPM = 20
BEFORE, OUTAGE, AFTER = 3.0, 5.0, 4.0
WORKERS = {"free": 4, "limited": 2, "budget": 2}
PAUSE = {"free": 0.0, "limited": 0.05, "budget": 0.4}
"""Clients per key and their pause between requests: the free key as fast as it goes, a steady
trickle against the limit, and a slow one that leaves the budget unspent when Redis stops."""


@dataclass
class Call:
    who: str
    replica: int
    start: float
    end: float
    status: int
    code: str | None = None
    outcome: str = ""


@pytest.fixture
def redis_alone() -> Iterator[RedisServer]:
    """A Redis of this test's own (it gets stopped), persistent as one holding keys must be."""
    server = RedisServer(persist=True).start()
    yield server
    server.close()


def start_pair(
    upstreams: UpstreamSet,
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
    server: RedisServer,
    policy: str,
) -> list[Gateway]:
    prefix = f"faults{uuid.uuid4().hex[:6]}:"
    shared = f"""
[redis]
url = "{server.url}"
key_prefix = "{prefix}"
timeout_seconds = {TIMEOUT}
[governance]
store = "redis"
[limits]
on_redis_down = "{policy}"
"""
    cache = f"""store = "redis"
[cache.embedder]
onnx_dir = "{ONNX_DIR}"
[cache.verifier]
enabled = false
"""
    gws = []
    for name in ("a", "b"):
        text = basic_config(
            upstreams,
            tmp_path / name,
            cache=True,
            cache_extra=cache,
            server_extra=f'admin_key = "{ADMIN}"',
            extra=DOLLAR_AN_ANSWER + shared,
        )
        gws.append(gateway_factory(write_config(tmp_path, text, f"{name}.toml"), start=False))
    start_gateways(gws)
    return gws


async def load(
    gws: list[Gateway],
    keys: dict[str, Key],
    fault: Callable[[], None],
    recover: Callable[[], None],
) -> tuple[list[Call], float, float]:
    """``WORKERS`` clients per key for BEFORE + OUTAGE + AFTER seconds; the fault is applied
    after BEFORE seconds and undone OUTAGE seconds later."""
    clients = {
        (who, i): gw.async_client(key.raw, timeout=30)
        for who, key in keys.items()
        for i, gw in enumerate(gws)
    }
    calls: list[Call] = []
    t0 = time.monotonic()
    stop_at = t0 + BEFORE + OUTAGE + AFTER
    counter = iter(range(10**9))

    async def worker(who: str, n: int) -> None:
        while time.monotonic() < stop_at:
            i = next(counter)
            replica = i % len(gws)
            # "free" repeats prompts (hits while the cache answers); the others never do
            text = f"steady question {i % 40:02d}" if who == "free" else f"{who} item {i:05d}"
            start = time.monotonic()
            try:
                raw = await clients[(who, replica)].chat.completions.with_raw_response.create(
                    model="m", messages=[{"role": "user", "content": text}], max_tokens=5
                )
                call = Call(who, replica, start, time.monotonic(), 200)
                call.outcome = raw.headers.get("x-sidecache", "")
            except openai.APIStatusError as exc:
                code = exc.body.get("code") if isinstance(exc.body, dict) else None
                call = Call(who, replica, start, time.monotonic(), exc.status_code, code)
            except openai.APIConnectionError:
                call = Call(who, replica, start, time.monotonic(), 0, "connection")
            calls.append(call)
            await asyncio.sleep(PAUSE[who])

    async def chaos() -> tuple[float, float]:
        await asyncio.sleep(BEFORE)
        down = time.monotonic()
        await asyncio.to_thread(fault)
        await asyncio.sleep(OUTAGE)
        await asyncio.to_thread(recover)
        return down, time.monotonic()

    workers = [worker(who, n) for who in keys for n in range(WORKERS[who])]
    try:
        *_, (down, up) = await asyncio.gather(*workers, chaos())
    finally:
        for c in clients.values():
            await c.close()
    return calls, down, up


def fleet_stats(gw: Gateway) -> dict[str, Any]:
    with gw.http(ADMIN) as http:
        doc: dict[str, Any] = http.get("/stats", params={"scope": "fleet"}).json()
    return doc


def report(name: str, calls: list[Call], down: float, up: float) -> dict[str, Any]:
    during = [c for c in calls if c.start >= down + TIMEOUT and c.end <= up]
    figures = {
        "requests": len(calls),
        "5xx": sum(1 for c in calls if c.status >= 500 or c.status == 0),
        "slowest_ms": round(max(c.end - c.start for c in calls) * 1000),
        "p99_ms": round(float(np.percentile([c.end - c.start for c in calls], 99)) * 1000),
        "during_outage": len(during),
        "admitted_during": {
            who: sum(1 for c in during if c.who == who and c.status == 200)
            for who in ("free", "limited", "budget")
        },
        "refused_during": {
            who: sorted({str(c.code) for c in during if c.who == who and c.status == 429})
            for who in ("limited", "budget")
        },
        "misses_during": sum(1 for c in during if c.outcome == "miss"),
    }
    print(f"\n{name}: {figures}")
    if os.environ.get("SIDECACHE_FAULT_DUMP"):  # every call, for a closer look
        rows = [
            (c.who, c.replica, c.start - down, c.end - c.start, c.status, c.code, c.outcome)
            for c in calls
        ]
        Path(os.environ["SIDECACHE_FAULT_DUMP"]).write_text(json.dumps(rows))
    return figures


def run_fault(
    upstreams: UpstreamSet,
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
    server: RedisServer,
    policy: str,
    fault: Callable[[], None],
    recover: Callable[[], None],
) -> tuple[list[Gateway], list[Call], dict[str, Any]]:
    gws = start_pair(upstreams, gateway_factory, tmp_path, server, policy)
    config = gws[0].config_path
    keys = {
        "free": create_key(config, "free"),
        "limited": create_key(config, "limited", "--rpm", str(RPM)),
        "budget": create_key(config, "budget", "--budget-usd", str(BUDGET)),
    }
    calls, down, up = asyncio.run(load(gws, keys, fault, recover))
    figures = report(f"{policy}, {fault.__name__}", calls, down, up)
    assert figures["5xx"] == 0, [c for c in calls if c.status >= 500 or c.status == 0][:5]
    # one process-wide breaker: a request meets a stuck Redis once (the timeout), never a queue
    # (before it, requests queued behind each other's timeouts: 4.4 s); the single slowest is
    # bounded loosely, since a loaded machine can stall any request a little
    assert figures["p99_ms"] < (TIMEOUT + 1.0) * 1000
    assert figures["slowest_ms"] < (TIMEOUT + 2.5) * 1000
    assert figures["admitted_during"]["free"] > 20 and figures["misses_during"] > 0
    return gws, calls, figures


def test_redis_frozen_under_load_fails_open_as_documented(
    upstreams: UpstreamSet,
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
    redis_alone: RedisServer,
) -> None:
    gws, calls, figures = run_fault(
        upstreams,
        gateway_factory,
        tmp_path,
        redis_alone,
        "open",
        redis_alone.pause,
        redis_alone.resume,
    )
    # open: each replica's own buckets (at most RPM each, plus refill) and budget shares
    assert 0 < figures["admitted_during"]["limited"] <= len(gws) * (RPM + OUTAGE * RPM / 60 + 1)
    assert figures["admitted_during"]["budget"] >= 0
    # the fleet never spent past the budget by more than one $1 estimate per replica ...
    assert wait_for(lambda: fleet_stats(gws[0])["shared_state"]["unsent_settlements"] == 0, 5)
    budget_ok = sum(1 for c in calls if c.who == "budget" and c.status == 200)
    spent = fleet_stats(gws[0])["tenants"]["budget"]["cost_usd"]
    print(f"budget: {budget_ok} answered, ${spent:.2f} of ${BUDGET:.2f} spent")
    assert spent <= BUDGET + len(gws) * 1.0
    # ... and what was spent while Redis was frozen reached it once it answered again
    assert all(fleet_stats(gw)["shared_state"]["redis"] == "up" for gw in gws)


def test_redis_killed_under_load_fails_closed_as_configured(
    upstreams: UpstreamSet,
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
    redis_alone: RedisServer,
) -> None:
    def kill() -> None:
        redis_alone.kill()

    def restart() -> None:
        redis_alone.start()

    _, calls, figures = run_fault(
        upstreams, gateway_factory, tmp_path, redis_alone, "closed", kill, restart
    )
    # closed: no request of a limited or budgeted key admitted while Redis was away
    assert figures["admitted_during"]["limited"] == 0
    assert figures["admitted_during"]["budget"] == 0
    assert figures["refused_during"]["limited"] == ["limits_unavailable"]
    assert figures["refused_during"]["budget"] == ["budget_unavailable"]
    # and after it is back the keys work again, through both replicas
    last = max(c.start for c in calls)
    back = [c for c in calls if c.who == "budget" and c.start > last - 1.0]
    assert any(c.status == 200 for c in back), back[-5:]
