"""Three gateway processes on one real Redis (``governance.store = "redis"``): one truth.

Before, two processes on one data directory admitted a key's ``--rpm 10`` twice over and a $3
budget at $1 an answer six times. Here 60 requests at once spread over three replicas, a burst of
30 against a budget, and a revocation through the CLI, each checked from outside with the real
SDK, counting what the upstream really answered.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from support import Gateway, UpstreamSet, basic_config, start_gateways, write_config
from support.chromium import CHROMIUM, PAGE_STATE, Browser, cdp_session
from support.counters import gateway_stats, wait_for
from support.keys import create_key, keys_cli
from support.redis_server import RedisServer, redis_server

__all__ = ["redis_server"]

ADMIN = "sk-admin-replicas"
# The fake upstream answers "Answer to: <prompt>": a prompt of three words is an answer of five
# tokens, so $200,000 per million output tokens makes every answer cost $1.
DOLLAR_AN_ANSWER = '[pricing."gpt-x"]\ninput = 0.0\noutput = 200000.0\n'


def shared_state(url: str, prefix: str) -> str:
    return f'[redis]\nurl = "{url}"\nkey_prefix = "{prefix}"\n[governance]\nstore = "redis"\n'


@pytest.fixture
def fleet(
    upstreams: UpstreamSet,
    redis_server: RedisServer,
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
) -> list[Gateway]:
    """Three replicas on one Redis prefix, own data directories, started in parallel."""
    prefix = f"fleet{uuid.uuid4().hex[:8]}:"
    gws = []
    for name in ("a", "b", "c"):
        text = basic_config(
            upstreams,
            tmp_path / name,
            server_extra=f'admin_key = "{ADMIN}"',
            extra=DOLLAR_AN_ANSWER + shared_state(redis_server.url, prefix),
        )
        gws.append(gateway_factory(write_config(tmp_path, text, f"{name}.toml"), start=False))
    start_gateways(gws)
    return gws


def fleet_stats(gw: Gateway) -> dict[str, Any]:
    with gw.http(ADMIN) as http:
        r = http.get("/stats", params={"scope": "fleet"})
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def fleet_settled(gw: Gateway, requests: int, replicas: int = 3) -> dict[str, Any]:
    """``/stats?scope=fleet`` once every replica has published ``requests`` settled requests."""
    doc: dict[str, Any] = {}

    def done() -> bool:
        nonlocal doc
        doc = fleet_stats(gw)
        return bool(
            len(doc["replicas"]) == replicas
            and doc["totals"]["requests"] >= requests
            and doc["in_flight"] == 0
        )

    assert wait_for(done, 5.0), (doc.get("totals"), doc.get("replicas"))
    return doc


async def spread(fleet: list[Gateway], key: str, texts: list[str], **kw: object) -> list[int]:
    """Status codes of ``texts`` sent all at once, request i to replica i % 3."""
    clients = [gw.async_client(key, timeout=60) for gw in fleet]

    async def one(i: int, text: str) -> int:
        try:
            await clients[i % len(clients)].chat.completions.create(
                model="m1", messages=[{"role": "user", "content": text}], **kw
            )
        except openai.APIStatusError as exc:
            return exc.status_code
        return 200

    try:
        return list(await asyncio.gather(*(one(i, t) for i, t in enumerate(texts))))
    finally:
        for c in clients:
            await c.close()


def test_rpm_is_one_limit_for_the_fleet(fleet: list[Gateway], upstreams: UpstreamSet) -> None:
    key = create_key(fleet[0].config_path, "lane", "--rpm", "10")
    codes = asyncio.run(spread(fleet, key.raw, [f"rpm question {i:03d}" for i in range(60)]))
    print(f"rpm 10, 60 at once over 3 replicas: {codes.count(200)} admitted")
    assert codes.count(200) == 10 and codes.count(429) == 50, codes
    assert upstreams["u1"].stats()["requests"] == 10


def test_a_budget_holds_against_a_burst_spread_over_the_fleet(
    fleet: list[Gateway], upstreams: UpstreamSet
) -> None:
    key = create_key(fleet[0].config_path, "burst", "--budget-usd", "3")
    # 30 distinct misses at once, each held 300 ms upstream so all are in flight together;
    # max_tokens = 5 makes each request's estimate exactly its real cost ($1).
    texts = [f"[[delay:300]] budget question {i:03d}" for i in range(30)]
    codes = asyncio.run(spread(fleet, key.raw, texts, max_tokens=5))
    fleet_doc = fleet_settled(fleet[2], 30)  # the whole fleet, read through any replica
    spent = fleet_doc["tenants"]["burst"]["cost_usd"]
    assert fleet_doc["tenants"]["burst"]["requests"] == 30
    print(f"$3 budget, 30 at once over 3 replicas: {codes.count(200)} admitted, ${spent:.2f}")
    assert codes.count(200) == 3 and codes.count(429) == 27, codes
    assert spent == pytest.approx(3.0)  # never more than one estimate ($1) over
    assert upstreams["u1"].stats()["requests"] == 3


def test_a_revocation_through_the_cli_reaches_every_replica_within_a_second(
    fleet: list[Gateway],
) -> None:
    key = create_key(fleet[0].config_path, "doomed")
    body = {"model": "m1", "messages": [{"role": "user", "content": "still here?"}]}
    https = [gw.http(key.raw) for gw in fleet]
    try:
        assert [h.post("/v1/chat/completions", json=body).status_code for h in https] == [200] * 3
        revoked = keys_cli(fleet[1].config_path, "revoke", key.id)
        done = time.monotonic()
        assert revoked.returncode == 0, revoked.stderr
        refused_at: dict[int, float] = {}

        def all_refuse() -> bool:
            for i, h in enumerate(https):
                refused = i in refused_at
                if not refused and h.post("/v1/chat/completions", json=body).status_code == 401:
                    refused_at[i] = time.monotonic() - done
            return len(refused_at) == len(https)

        assert wait_for(all_refuse, 1.0), refused_at
        print(f"revocation effective on 3 replicas after {max(refused_at.values()) * 1000:.0f} ms")
    finally:
        for h in https:
            h.close()
    for gw in fleet:  # and it stays refused, with the same error everywhere
        with httpx.Client(base_url=gw.url, timeout=10) as http:
            r = http.post(
                "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key.raw}"}
            )
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_the_fleet_view_sums_the_replicas_and_the_dashboard_shows_it(
    fleet: list[Gateway],
    upstreams: UpstreamSet,
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
) -> None:
    key = create_key(fleet[0].config_path, "viewer")
    codes = asyncio.run(spread(fleet, key.raw, [f"fleet question {i:02d}" for i in range(12)]))
    assert codes == [200] * 12
    doc = fleet_settled(fleet[1], 12)
    assert doc["scope"] == "fleet" and len(doc["replicas"]) == 3
    assert doc["tenants"]["viewer"]["requests"] == 12
    assert doc["shared_state"]["redis"] == "up" and doc["shared_state"]["replicas_alive"] == 3
    one = gateway_stats(fleet[1], ADMIN)  # the default is this replica alone
    assert one["tenants"]["viewer"]["requests"] == 4 and "replicas" not in one
    with fleet[0].http(ADMIN) as http:
        bad = http.get("/stats", params={"scope": "everything"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "scope"
    alone = gateway_factory(basic_config(upstreams, tmp_path / "alone"))
    with alone.http(None) as http:
        r = http.get("/stats", params={"scope": "fleet"})
    assert r.status_code == 400 and "shared Redis" in r.json()["error"]["message"]

    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    pytest.importorskip("websockets")
    browser = Browser()

    async def page() -> dict[str, Any]:
        async with cdp_session(browser) as cdp:
            url = f"{fleet[2].url}/dashboard?scope=fleet&key={ADMIN}"
            await cdp.send("Page.navigate", {"url": url})
            await cdp.wait_for("Number(document.body.dataset.renderCount || 0) >= 1")
            state: dict[str, Any] = await cdp.eval(PAGE_STATE)
            state["problems"] = cdp.problems()
            return state

    try:
        state = asyncio.run(page())
    finally:
        browser.close()
    assert state["problems"] == [] and state["banner"] == "none"
    assert "fleet of 3" in state["status"]
    assert state["kpi"]["requests"] == f"{fleet_stats(fleet[2])['totals']['requests']:,}"
