"""Two real gateway processes sharing one real Redis: what one replica stores, the other serves.

Each gateway keeps its own FAISS mirror, fed by the Redis change stream; these tests check that
an answer stored through A is an exact and a semantic hit through B within a second, that a delete
through A's admin API reaches B, and that a restarted B rebuilds its indexes from Redis.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import Gateway, UpstreamSet, basic_config, start_gateways
from support.redis_server import RedisServer, redis_server

__all__ = ["redis_server"]

ADMIN = "sk-admin-test"
ONNX_DIR = Path(
    os.environ.get("SIDECACHE_TEST_ONNX_DIR", Path.home() / ".cache" / "sidecache-test" / "onnx")
)
PARA_A = "How do I reverse a list in Python?"
PARA_B = "What's the way to reverse a Python list?"
CAPITAL_A = "What is the capital city of Australia?"
CAPITAL_B = "Which city is the capital of Australia?"


def config(upstreams: UpstreamSet, tmp: Path, redis_url: str, prefix: str) -> str:
    return basic_config(
        upstreams,
        tmp,
        cache=True,
        server_extra=f'admin_key = "{ADMIN}"',
        cache_extra=f"""store = "redis"
sweep_interval_seconds = 0.2
[cache.redis]
url = "{redis_url}"
key_prefix = "{prefix}"
[cache.embedder]
onnx_dir = "{ONNX_DIR}"
[cache.verifier]
enabled = false
""",
    )


@pytest.fixture
def pair(
    upstreams: UpstreamSet,
    redis_server: RedisServer,
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
) -> tuple[Gateway, Gateway]:
    """Gateways A and B on one Redis key prefix (own data dirs), started in parallel."""
    prefix = f"e2e{uuid.uuid4().hex[:8]}:"
    gws = [
        gateway_factory(config(upstreams, tmp_path / name, redis_server.url, prefix), start=False)
        for name in ("a", "b")
    ]
    start_gateways(gws)
    return gws[0], gws[1]


def ask(gw: Gateway, text: str, *, store: bool = True) -> tuple[str, dict[str, Any]]:
    """(x-sidecache outcome, headers); ``store=False`` sends ``Cache-Control: no-store``."""
    headers = {} if store else {"Cache-Control": "no-store"}
    raw = gw.client().chat.completions.with_raw_response.create(
        model="m1", messages=[{"role": "user", "content": text}], extra_headers=headers
    )
    return raw.headers["x-sidecache"], dict(raw.headers)


def stats(gw: Gateway) -> dict[str, Any]:
    with gw.http(api_key=ADMIN) as http:
        data: dict[str, Any] = http.get("/admin/cache/stats").json()
    return data


def wait_until(what: str, cond: Any, timeout: float) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.01)
    return time.monotonic() - t0


def test_replicas_share_hits_deletes_and_rebuild(
    pair: tuple[Gateway, Gateway], upstreams: UpstreamSet
) -> None:
    a, b = pair
    assert ask(a, PARA_A)[0] == "miss"
    wait_until("A stored the answer", lambda: stats(a)["entries"] >= 1, 5.0)
    t0 = time.monotonic()
    outcome, headers = ask(b, PARA_A)
    assert outcome == "hit-exact"
    entry_id = headers["x-sidecache-entry"]
    wait_until("B mirrored the vector", lambda: stats(b)["vectors"] >= 1, 1.0)
    outcome, headers = ask(b, PARA_B)
    assert outcome == "hit-semantic" and headers["x-sidecache-entry"] == entry_id
    assert time.monotonic() - t0 < 1.0
    assert upstreams["u1"].stats()["requests"] == 1

    with a.http(api_key=ADMIN) as http:
        assert http.delete(f"/admin/cache/entries/{entry_id}").status_code == 200
    wait_until("B dropped the vector", lambda: stats(b)["vectors"] == 0, 1.0)
    assert ask(b, PARA_B, store=False)[0] == "miss"
    assert ask(b, PARA_A, store=False)[0] == "miss"

    b.stop()  # stored while B is down: B can only learn of it from Redis when it starts
    assert ask(a, CAPITAL_A)[0] == "miss"
    wait_until("A stored the answer", lambda: stats(a)["entries"] >= 1, 5.0)
    b.start()
    assert stats(b)["vectors"] == 1
    outcome, _ = ask(b, CAPITAL_B, store=False)
    assert outcome == "hit-semantic"
