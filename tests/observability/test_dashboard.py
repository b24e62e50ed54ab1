"""The dashboard in a real headless Chromium, driven over the DevTools protocol.

A tiny Starlette app serves the page and a ``/stats`` document built by the real ``Stats`` from
synthetic records (the gateway is not needed). The test checks that the page renders the
figures and draws its charts, sends the admin key from ``?key=``, handles refusal and an empty
gateway, logs no console errors, and saves a screenshot to a temporary file
(``SIDECACHE_DASHBOARD_PNG`` names one to keep).
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.chromium import CHROMIUM, PAGE_STATE, Browser, cdp_session

from sidecache.governance.pricing import Pricing
from sidecache.observability.dashboard import CONTENT_TYPE, dashboard_html
from sidecache.observability.record import RequestRecord
from sidecache.observability.stats import Stats

websockets = pytest.importorskip("websockets")
uvicorn = pytest.importorskip("uvicorn")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

ADMIN_KEY = "admin-secret-123"
SCREENSHOT = Path(
    os.environ.get("SIDECACHE_DASHBOARD_PNG")
    or Path(tempfile.gettempdir()) / f"sidecache-dashboard-{os.getpid()}.png"
)
"""Where the screenshot goes: a temporary file, unless asked for one to keep (the README's is
made with ``SIDECACHE_DASHBOARD_PNG=benchmarks/results/dashboard.png``)."""


def test_page_is_self_contained() -> None:
    page = dashboard_html().decode()
    assert page.startswith("<!doctype html>")
    for external in ("http://", "https://", "//cdn", "@import", "fonts.g"):
        assert external not in page
    assert b'data-stats-url="/api/stats"' in dashboard_html("/api/stats")


# -- data --------------------------------------------------------------------------------------


def busy_stats(now: float) -> Stats:
    """Fifteen minutes of plausible traffic: the cache warms up and the hit rate climbs."""
    rnd = random.Random(7)
    pricing = Pricing()
    st = Stats()
    tenants = ["acme", "globex", "initech"]
    models = {"fast": ("openai", "gpt-4o-mini"), "smart": ("anthropic", "claude-sonnet-4")}
    for b in range(90):
        t = now - 900 + b * 10
        warm = b / 90
        for _ in range(rnd.randint(6, 16)):
            alias = rnd.choice(["fast", "fast", "smart"])
            provider, upstream = models[alias]
            p_tok, c_tok = rnd.randint(200, 1500), rnd.randint(50, 600)
            cost = pricing.cost(upstream, p_tok, c_tok)
            u = rnd.random()
            common = {
                "request_id": f"r{b}",
                "tenant": rnd.choice(tenants),
                "model": alias,
                "tags": {"feature": rnd.choice(["search", "chat"])},
            }
            if u < 0.35 * warm:
                r = RequestRecord(
                    outcome="hit-exact",
                    latency_s=rnd.uniform(0.001, 0.004),
                    saved_tokens=p_tok + c_tok,
                    saved_usd=cost,
                    **common,  # type: ignore[arg-type]
                )
            elif u < 0.6 * warm:
                r = RequestRecord(
                    outcome="hit-semantic",
                    latency_s=rnd.uniform(0.008, 0.03),
                    saved_tokens=p_tok + c_tok,
                    saved_usd=cost,
                    **common,  # type: ignore[arg-type]
                )
            elif u > 0.985:
                r = RequestRecord(
                    outcome="error",
                    provider=provider,
                    latency_s=rnd.uniform(0.05, 5),
                    status=502,
                    error_reason="upstream_502",
                    **common,  # type: ignore[arg-type]
                )
                st.record_upstream_error(provider, "upstream_502")
            else:
                r = RequestRecord(
                    outcome="bypass" if u > 0.95 else "miss",
                    provider=provider,
                    latency_s=rnd.uniform(0.4, 2.5),
                    ttft_s=rnd.uniform(0.15, 0.6),
                    prompt_tokens=p_tok,
                    completion_tokens=c_tok,
                    cost_usd=cost,
                    **common,  # type: ignore[arg-type]
                )
            st.record(r, now=t)
    st.record_upstream_error("anthropic", "upstream_timeout")
    return st


EXTRA = {
    "cache": {"entries": 1834, "bytes": 7_340_032, "scopes": 41, "evictions": 0},
    "circuits": {
        "openai/gpt-4o-mini": "closed",
        "anthropic/claude-sonnet-4": {"state": "half-open", "failures": 3},
        "local/llama3": "open",
    },
    "targets": {
        "openai/gpt-4o-mini": {
            "circuit": "closed",
            "region": "eu",
            "in_flight": 3,
            "calls": 812,
            "error_rate": 0.012,
            "latency_ms": 640.5,
            "latency_p95_ms": 1830.0,
            "rpm_free": 412.0,
        },
    },
    "variants": {
        "fast": {
            "control": {
                "requests": 900,
                "hits": 300,
                "misses": 560,
                "errors": 4,
                "fallbacks": 2,
                "hit_rate": 0.349,
                "error_rate": 0.0067,
                "latency_p50_ms": 820.0,
                "latency_p95_ms": 2100.0,
                "cost_usd": 1.92,
                "cost_per_1k_tokens": 0.00071,
            },
            "candidate": {
                "requests": 100,
                "hits": 30,
                "misses": 70,
                "errors": 0,
                "fallbacks": 0,
                "hit_rate": 0.3,
                "error_rate": 0.0,
                "latency_p50_ms": 610.0,
                "latency_p95_ms": 1400.0,
                "cost_usd": 0.08,
                "cost_per_1k_tokens": 0.00022,
            },
        }
    },
    "budget_alerts": {
        "counts": {"delivered": 1},
        "recent": [
            {
                "scope": "key",
                "key_id": "key_5f2a",
                "tenant": "acme",
                "plan": "pro",
                "threshold": 0.8,
                "budget_usd": 50.0,
                "spent_usd": 40.1,
                "period": "month",
                "created_at": 1_700_000_000.0,
                "status": "delivered",
                "attempts": 2,
                "error": None,
            }
        ],
    },
}


# -- the stats server --------------------------------------------------------------------------


class StatsServer:
    """Serves the dashboard and a swappable ``/stats`` document on a free loopback port."""

    def __init__(self) -> None:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        self.stats = Stats()
        self.require_key = True
        self.auth_seen: list[str | None] = []

        async def page(request: Request) -> Response:
            return Response(dashboard_html(), media_type=CONTENT_TYPE)

        async def stats(request: Request) -> Response:
            auth = request.headers.get("authorization")
            self.auth_seen.append(auth)
            if self.require_key and auth != f"Bearer {ADMIN_KEY}":
                body = {"error": {"message": "admin key required", "type": "x", "code": None}}
                return Response(orjson.dumps(body), status_code=401, media_type="application/json")
            doc = self.stats.snapshot(EXTRA if self.stats.snapshot()["totals"]["requests"] else {})
            return Response(orjson.dumps(doc), media_type="application/json")

        app = Starlette(routes=[Route("/dashboard", page), Route("/stats", stats)])
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> StatsServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("stats server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def url(self, query: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/dashboard{query}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[StatsServer, Browser]]:
    with StatsServer() as server:
        browser = Browser()
        try:
            yield server, browser
        finally:
            browser.close()


def test_dashboard_renders_live_stats(env: tuple[StatsServer, Browser]) -> None:
    server, browser = env
    now = time.time()
    server.stats = busy_stats(now)
    server.require_key = True
    expected = server.stats.snapshot()

    async def scenario() -> dict[str, Any]:
        async with cdp_session(browser) as cdp:
            await cdp.send("Page.navigate", {"url": server.url(f"?key={ADMIN_KEY}")})
            await cdp.wait_for("Number(document.body.dataset.renderCount || 0) >= 2")
            state: dict[str, Any] = await cdp.eval(PAGE_STATE)
            metrics = await cdp.send("Page.getLayoutMetrics")
            height = int(metrics["cssContentSize"]["height"]) + 1
            await cdp.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": 1400, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            await cdp.wait_for(
                "new Promise(r => setTimeout(() => r(true), 300))"
            )  # resize redraw (debounced 100 ms)
            shot = await cdp.send("Page.captureScreenshot", {"format": "png"})
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))
            state["problems"] = cdp.problems()
            return state

    state = asyncio.run(scenario())
    assert state["problems"] == []
    assert state["rendered"] == "1" and state["renders"] >= 2
    assert state["banner"] == "none"
    assert state["status"].startswith("live")
    total = expected["totals"]["requests"]
    assert state["kpi"]["requests"] == f"{total:,}"
    assert state["kpi"]["hitrate"].endswith("%") and state["kpi"]["hitrate"] != "0%"
    assert state["kpi"]["saved"].startswith("$") and state["kpi"]["spent"].startswith("$")
    assert state["kpi"]["cache"] == "1,834"
    assert state["kpi"]["latency"].endswith(" s") or state["kpi"]["latency"].endswith(" ms")
    for c in state["canvases"]:
        assert c["drawn"] == "1", c
        assert c["colored"] > 500, c  # data was drawn in colour, not just grid and labels
    assert state["rows"] == {
        "tenants": 3,
        "models": 2,
        "providers": 2,
        "circuits": 3,
        "tags": 2,
        "variants": 2,
        "alerts": 1,
    }
    for figure in ("$ / 1K tok", "fast / candidate", "$0.00022", "[eu]", "1.2%", "412 rpm"):
        assert figure in state["tables"], figure
    assert "key key_5f2a (acme)" in state["tables"] and "delivered after 2 tries" in state["tables"]
    assert sorted(state["pills"]) == ["closed", "half-open", "open"]
    for name in ("acme", "globex", "initech", "fast", "smart", "openai", "anthropic"):
        assert name in state["tables"]
    assert "upstream_502" in state["tables"]
    assert f"Bearer {ADMIN_KEY}" in server.auth_seen
    assert SCREENSHOT.stat().st_size > 20_000


def test_dashboard_asks_for_the_admin_key(env: tuple[StatsServer, Browser]) -> None:
    server, browser = env
    server.stats = busy_stats(time.time())
    server.require_key = True

    async def scenario() -> dict[str, Any]:
        async with cdp_session(browser) as cdp:
            await cdp.send("Page.navigate", {"url": server.url()})
            await cdp.wait_for(
                "getComputedStyle(document.getElementById('banner')).display !== 'none'"
            )
            state: dict[str, Any] = await cdp.eval(PAGE_STATE)
            state["problems"] = cdp.problems(allow_network=True)  # the 401 itself is logged
            return state

    state = asyncio.run(scenario())
    assert state["problems"] == []
    assert "admin key" in state["bannerText"] and "?key=" in state["bannerText"]
    assert state["status"] == "unauthorised"
    assert state["rendered"] is None


def test_dashboard_with_no_traffic(env: tuple[StatsServer, Browser]) -> None:
    server, browser = env
    server.stats = Stats()
    server.require_key = False

    async def scenario() -> dict[str, Any]:
        async with cdp_session(browser) as cdp:
            await cdp.send("Page.navigate", {"url": server.url()})
            await cdp.wait_for("document.body.dataset.rendered === '1'")
            state: dict[str, Any] = await cdp.eval(PAGE_STATE)
            state["problems"] = cdp.problems()
            return state

    state = asyncio.run(scenario())
    assert state["problems"] == []
    assert state["kpi"]["requests"] == "0" and state["kpi"]["hitrate"] == "–"
    assert all(c["drawn"] == "0" for c in state["canvases"])
    assert state["rows"]["tenants"] == 1  # the "nothing yet" row
    assert "nothing yet" in state["tables"]
