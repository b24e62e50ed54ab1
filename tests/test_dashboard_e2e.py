"""The dashboard against the real gateway, in a real headless Chromium, after real traffic.

Three tenants (keys made with the ``sidecache keys`` CLI) send a few waves of requests through
the openai SDK: answers, streams, a rate-limited key, a failing upstream, and, when the semantic
cache can run here, repeated questions that hit. The page is then opened with the admin key; it
must show the same figures as ``/stats``, draw its charts with data, and log no console errors.
A full-page screenshot is saved to a temporary file (``SIDECACHE_DASHBOARD_PNG`` names one to
keep, e.g. ``benchmarks/results/dashboard.png`` for the README).
"""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from support import Gateway, basic_config, write_config
from support.chromium import CHROMIUM, PAGE_STATE, Browser, cdp_session
from test_governance_e2e import (
    ADMIN,
    CACHE_EXTRA,
    CACHE_READY,
    FAST_RETRY,
    PRICING,
    Key,
    create_key,
    stats,
    wait_for,
)

pytest.importorskip("websockets")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

SCREENSHOT = Path(
    os.environ.get("SIDECACHE_DASHBOARD_PNG")
    or Path(tempfile.gettempdir()) / f"sidecache-dashboard-{os.getpid()}.png"
)
"""Where the screenshot goes: a temporary file, unless asked for one to keep (the README's is
made with ``SIDECACHE_DASHBOARD_PNG=benchmarks/results/dashboard.png``)."""
OBSERVABILITY = """
[observability]
stats_bucket_seconds = 1
"""
WAVES = 4
ACME_QUESTIONS = [
    "how do I reverse a list in python",
    "what is the capital of france",
    "how many days are in a leap year",
]
PARAPHRASE = "what's the capital city of france"  # of a stored question: a semantic hit
# A new topic every wave (numbered variants of one prompt would be near-duplicates, and with
# the verifier off here they could hit each other).
FRESH = [
    "summarise the quarterly sales figures",
    "draft a polite reminder email to a supplier",
    "explain how photosynthesis works",
    "list three uses for baking soda",
]
GLOBEX = [
    "what changed in the billing system",
    "who approved the marketing budget",
    "when is the next product launch",
    "why did the build pipeline fail",
]
INITECH = [
    "translate good morning into german",
    "recommend a book about astronomy",
    "how tall is mount everest",
    "convert ten miles to kilometres",
]


def traffic(gw: Gateway, keys: dict[str, Key]) -> int:
    """Send the waves; returns how many requests were sent."""
    sent = 0

    def ask(key: Key, text: str, model: str = "m", **kw: Any) -> None:
        nonlocal sent
        sent += 1
        client = gw.client(key.raw)
        try:
            if kw.pop("stream", False):
                for _ in client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": text}], stream=True
                ):
                    pass
            else:
                client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": text}], **kw
                )
        except openai.APIStatusError as exc:
            assert exc.status_code in (429, 502), exc

    tags = {"x-sidecache-tags": "feature=search"}
    for wave in range(WAVES):
        for q in ACME_QUESTIONS:  # the same questions every wave: hits once cached
            ask(keys["acme"], q, extra_headers=tags)
        if wave:
            ask(keys["acme"], PARAPHRASE)
        ask(keys["acme"], FRESH[wave], stream=True)
        ask(keys["globex"], GLOBEX[wave], model="m1")
        ask(keys["globex"], "what changed since yesterday", model="m1")  # a repeat
        if wave == 1:
            ask(keys["globex"], "[[status:503]] the upstream is down", model="m1")
        ask(keys["initech"], INITECH[wave])  # rpm 3: the last wave is refused
        time.sleep(1.05)  # one stats bucket per wave
    return sent


@pytest.fixture(scope="module")
def busy_gateway(upstreams, tmp_path_factory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("dashboard")
    text = basic_config(
        upstreams,
        tmp,
        cache=CACHE_READY,
        cache_extra=CACHE_EXTRA if CACHE_READY else "",
        server_extra=f'admin_key = "{ADMIN}"',
        extra=PRICING + FAST_RETRY + OBSERVABILITY,
    )
    config = write_config(tmp, text)
    keys = {
        "acme": create_key(config, "acme"),
        "globex": create_key(config, "globex", "--models", "m1"),
        "initech": create_key(config, "initech", "--rpm", "3"),
    }
    gw = Gateway(config).start()
    try:
        sent = traffic(gw, keys)
        assert wait_for(lambda: stats(gw)["totals"]["requests"] == sent)
        yield gw
    finally:
        gw.stop()


def test_dashboard_shows_the_real_gateway(busy_gateway: Gateway) -> None:
    gw = busy_gateway
    expected = stats(gw)
    browser = Browser()

    async def scenario() -> dict[str, Any]:
        async with cdp_session(browser) as cdp:
            await cdp.send("Page.navigate", {"url": f"{gw.url}/dashboard?key={ADMIN}"})
            await cdp.wait_for("Number(document.body.dataset.renderCount || 0) >= 2")
            state: dict[str, Any] = await cdp.eval(PAGE_STATE)
            metrics = await cdp.send("Page.getLayoutMetrics")
            height = int(metrics["cssContentSize"]["height"]) + 1
            await cdp.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": 1400, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            await cdp.wait_for("new Promise(r => setTimeout(() => r(true), 300))")  # redraw
            shot = await cdp.send("Page.captureScreenshot", {"format": "png"})
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))
            state["problems"] = cdp.problems()
            return state

    try:
        state = asyncio.run(scenario())
    finally:
        browser.close()

    totals = expected["totals"]
    assert state["problems"] == []
    assert state["rendered"] == "1" and state["banner"] == "none"
    assert state["status"].startswith("live")
    assert state["kpi"]["requests"] == f"{totals['requests']:,}"
    assert totals["errors"] >= 2  # the failed upstream and the rate-limited key
    assert state["kpi"]["spent"].startswith("$") and totals["cost_usd"] > 0
    assert state["kpi"]["latency"] != "–"
    drawn = {c["id"]: c for c in state["canvases"]}
    assert all(c["drawn"] == "1" for c in drawn.values()), drawn
    assert drawn["c-requests"]["colored"] > 100  # misses/errors in colour, not only grey
    assert drawn["c-money"]["colored"] > 100  # the spend line
    if CACHE_READY:
        assert totals["hit_exact"] > 0 and totals["hit_semantic"] > 0
        assert state["kpi"]["hitrate"].endswith("%") and state["kpi"]["hitrate"] != "0%"
        assert state["kpi"]["saved"] != "$0" and totals["saved_usd"] > 0
        assert drawn["c-hitrate"]["colored"] > 100
        assert state["kpi"]["cache"] == f"{expected['cache']['entries']:,}"
    assert state["rows"]["tenants"] == 3 and state["rows"]["models"] == 2
    assert state["rows"]["providers"] == len(expected["providers"]) >= 2
    assert state["rows"]["circuits"] == len(expected["circuits"]) == 3
    assert state["rows"]["tags"] == 1
    for name in ("acme", "globex", "initech", "u1", "u2", "upstream_503"):
        assert name in state["tables"], name
    assert SCREENSHOT.stat().st_size > 20_000
