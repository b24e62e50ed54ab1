"""The dashboard's answer-quality and shadow panels, in a real Chromium, after real traffic.

A gateway whose alias mirrors its misses to a shadow target and audits every semantic hit at a
loose threshold that adapts: a few misses, a right and a wrong paraphrase, one bad verdict. The
page must show both panels with the figures of ``/stats`` (the threshold that moved, the
false-hit rate with its interval, audits, feedback; primary against shadow), and log no error.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from support import Gateway, UpstreamSet, basic_config
from support.chromium import CHROMIUM, Browser, cdp_session
from support.counters import gateway_stats, wait_for
from support.keys import create_key

pytest.importorskip("websockets")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

ADMIN = "sk-admin-quality-dashboard"
ONNX_DIR = Path.home() / ".cache" / "sidecache-test" / "onnx"
EXTRA = """
[models.watched]
targets = [{target = "u1/gpt-x"}]
shadow = {target = "u2/gpt-y", rate = 1.0}
verifier = false
threshold = 0.5
min_threshold = 0.5
audit_rate = 1.0
target_error_rate = 0.1
"""
PANELS = """(() => {
  const rows = (id) => Array.from(document.querySelectorAll('#' + id + ' tbody tr'))
    .map((tr) => Array.from(tr.cells).map((td) => td.textContent));
  const shown = (id) => getComputedStyle(document.getElementById(id)).display !== 'none';
  return {
    quality: rows('t-quality'), shadow: rows('t-shadow'),
    qualityShown: shown('p-quality'), shadowShown: shown('p-shadow'),
    lane: document.getElementById('side-lane').textContent,
    sparks: document.querySelectorAll('#t-quality svg.spark polyline').length,
  };
})()"""


def test_the_dashboard_shows_answer_quality_and_shadow_traffic(
    upstreams: UpstreamSet, gateway_factory: Any, tmp_path: Path
) -> None:
    gw: Gateway = gateway_factory(
        basic_config(
            [upstreams["u1"], upstreams["u2"]],
            tmp_path,
            cache=True,
            server_extra=f'admin_key = "{ADMIN}"',
            cache_extra=f'[cache.embedder]\nonnx_dir = "{ONNX_DIR}"\n',
            extra=EXTRA,
        )
    )
    key = create_key(gw.config_path, "acme")
    client = gw.client(key.raw)

    def ask(text: str) -> Any:
        return client.chat.completions.with_raw_response.create(
            model="watched", messages=[{"role": "user", "content": text}]
        )

    ask("What is the capital of France?")
    ask("How do I reverse a list in Python?")
    ask("What's the way to reverse a Python list?")  # a right hit, audited
    wrong = ask("What is the capital of Spain?")  # a wrong hit at 0.5: the threshold moves
    assert wrong.headers["x-sidecache"] == "hit-semantic"
    with gw.http(key.raw) as http:
        body = {"request_id": wrong.headers["x-request-id"], "verdict": "bad"}
        assert http.post("/v1/cache/feedback", json=body).status_code == 200

    def settled() -> bool:
        q = gateway_stats(gw, ADMIN)["quality"]
        m = q["models"]["watched"]
        moved = m["effective_threshold"] > 0.5
        return moved and m["hits_audited"] == 2 and q["shadow"]["watched"]["mirrored"] == 2

    assert wait_for(settled, timeout=15)
    expected = gateway_stats(gw, ADMIN)["quality"]
    watched = expected["models"]["watched"]
    assert watched["effective_threshold"] > 0.5 and watched["audit_disagreements"] == 1

    browser = Browser()

    async def scenario() -> dict[str, Any]:
        async with cdp_session(browser) as cdp:
            await cdp.send("Page.navigate", {"url": f"{gw.url}/dashboard?key={ADMIN}"})
            await cdp.wait_for("Number(document.body.dataset.renderCount || 0) >= 1")
            state: dict[str, Any] = await cdp.eval(PANELS)
            state["problems"] = cdp.problems()
            return state

    try:
        state = asyncio.run(scenario())
    finally:
        browser.close()

    assert state["problems"] == []
    assert state["qualityShown"] and state["shadowShown"]
    quality = {row[0]: row for row in state["quality"]}
    assert set(quality) == {"watched"}  # aliases without side traffic stay out of the way
    row = quality["watched"]
    assert row[1].startswith(f"0.500 → {watched['effective_threshold']:.3f}")
    assert "(" in row[2] and "%" in row[2]  # the rate with its interval
    # the target, and how likely the rate at the threshold now meets it (a guess until certified)
    target, _, likely = row[3].partition(" (")
    assert target == "10.0%", row[3]
    shown = float(likely.split("%")[0]) / 100
    assert abs(shown - watched["target_met_probability"]) < 0.001, row[3]
    assert likely.endswith("%)" if watched["certified"] else "%, a guess)"), row[3]
    assert row[5].startswith("2 (1 differed)") and row[7] == "1"
    assert state["sparks"] == 1
    (shadow,) = state["shadow"]
    assert shadow[0] == "watched" and shadow[1].startswith("u2/gpt-y") and shadow[2] == "2"
    assert "side calls in flight: 0 of 8" in state["lane"]
