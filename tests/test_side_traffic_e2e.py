"""Shadow traffic through the real gateway: several fake upstreams, the openai SDK as client.

An alias served by u1 and u3 mirrors its misses to u2 (another model, another price). The
client must only ever see the primary's answers, the cache must only ever hold them, the
shadow's cost must stay out of the tenant's spend and budget, and ``/stats`` and ``/metrics``
must compare the two sides. A slow shadow must not slow the client, and the side lane must drop
(and count) what exceeds its bound instead of queueing it. Waits are on the gateway's counters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from support import Gateway, UpstreamSet, basic_config, counters
from support.counters import gateway_stats, wait_for
from support.keys import create_key

ADMIN = "sk-admin-side-traffic"
ONNX_DIR = Path.home() / ".cache" / "sidecache-test" / "onnx"
# "Answer to: " + three words = five completion tokens: $1 an answer from gpt-x, $10 from gpt-y.
PRICES = """
[pricing."gpt-x"]
input = 0.0
output = 200000.0
[pricing."gpt-y"]
input = 0.0
output = 2000000.0
"""
SHADOWED = """
[models.shadowed]
targets = [{target = "u1/gpt-x"}, {target = "u3/gpt-x"}]
shadow = {target = "u2/gpt-y", rate = 1.0}
"""


def config(upstreams: UpstreamSet, tmp: Path, extra: str = "", server: str = "") -> str:
    return basic_config(
        upstreams,
        tmp,
        cache=True,
        server_extra=f'admin_key = "{ADMIN}"\n' + server,
        cache_extra=f'[cache.embedder]\nonnx_dir = "{ONNX_DIR}"\n',
        extra=PRICES + extra,
    )


def shadow_figures(gw: Gateway, alias: str) -> dict[str, Any]:
    doc: dict[str, Any] = gateway_stats(gw, ADMIN)["quality"]["shadow"][alias]
    return doc


def metric(gw: Gateway, name: str, **labels: str) -> float | None:
    return counters.metric(gw, ADMIN, name, **labels)


def test_misses_are_mirrored_to_the_shadow_which_the_client_never_sees_nor_pays(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(config(upstreams, tmp_path, SHADOWED))
    key = create_key(gw.config_path, "acme", "--budget-usd", "5")
    client = gw.client(key.raw)
    prompts = [
        "mirror me once",
        "mirror me twice",
        "mirror me thrice",
        "[[fail_on:u2]] the shadow fails",
    ]
    for i, text in enumerate(prompts):
        messages = [{"role": "user", "content": text}]
        if i % 2:
            chunks = list(
                client.chat.completions.create(
                    model="shadowed", messages=messages, max_tokens=5, stream=True
                )
            )
            assert {c.model for c in chunks} == {"gpt-x"}
            text_out = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            r = client.chat.completions.create(model="shadowed", messages=messages, max_tokens=5)
            assert r.model == "gpt-x"
            text_out = r.choices[0].message.content or ""
        assert text_out.startswith("Answer to: ")

    assert wait_for(lambda: shadow_figures(gw, "shadowed")["mirrored"] == 4)
    figures = shadow_figures(gw, "shadowed")
    shadow = upstreams["u2"].stats()
    assert shadow["requests"] == 4 and shadow["by_model"] == {"gpt-y": 4}
    assert shadow["streams_started"] == 0  # a side call asks for one whole answer
    assert upstreams["u1"].stats()["requests"] + upstreams["u3"].stats()["requests"] == 4
    assert figures["primary"]["requests"] == 4 and figures["primary"]["errors"] == 0
    assert figures["shadow"]["errors"] == 1 and figures["shadow"]["error_rate"] == 0.25
    assert figures["primary"]["cost_usd"] == pytest.approx(4.0)
    assert figures["shadow"]["cost_usd"] == pytest.approx(30.0)
    assert figures["compared"] == 3 and figures["agreement_rate"] == 1.0
    assert figures["answer_cosine_mean"] == pytest.approx(1.0, abs=1e-3)  # the same answers
    assert figures["primary"]["latency_p50_ms"] and figures["shadow"]["latency_p50_ms"]

    # The shadow's $30 is side spend: the tenant spent $4 of its $5 and may still ask.
    doc = gateway_stats(gw, ADMIN)
    assert doc["tenants"]["acme"]["cost_usd"] == pytest.approx(4.0)
    assert doc["quality"]["models"]["shadowed"]["shadow_spend_usd"] == pytest.approx(30.0)
    assert metric(gw, "sidecache_side_cost_usd_total", kind="shadow", model="shadowed") == 30.0
    assert metric(gw, "sidecache_shadow_errors_total", arm="shadow", model="shadowed") == 1.0
    r = client.chat.completions.with_raw_response.create(
        model="shadowed", messages=[{"role": "user", "content": "one more question"}], max_tokens=5
    )
    assert r.status_code == 200 and r.headers["x-sidecache"] == "miss"

    # Only the primary's answers are cached; a hit is never mirrored.
    hit = client.chat.completions.with_raw_response.create(
        model="shadowed", messages=[{"role": "user", "content": prompts[0]}], max_tokens=5
    )
    assert hit.headers["x-sidecache"] == "hit-exact" and hit.parse().model == "gpt-x"
    assert wait_for(lambda: shadow_figures(gw, "shadowed")["mirrored"] == 5)
    assert upstreams["u2"].stats()["requests"] == 5


def test_a_slow_shadow_adds_no_latency_and_the_lane_drops_what_exceeds_its_bound(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(
        config(upstreams, tmp_path, SHADOWED + "[side_traffic]\nmax_in_flight = 2\n")
    )

    async def burst() -> list[float]:
        client = gw.async_client(timeout=30)

        async def one(i: int) -> float:
            t0 = time.perf_counter()
            await client.chat.completions.create(
                model="shadowed",
                messages=[{"role": "user", "content": f"[[slow_on:u2:2000]] slow shadow {i}"}],
            )
            return time.perf_counter() - t0

        try:
            return list(await asyncio.gather(*(one(i) for i in range(5))))
        finally:
            await client.close()

    latencies = asyncio.run(burst())
    assert max(latencies) < 1.0, latencies  # the shadow takes 2 s; nobody waited for it
    lane = gateway_stats(gw, ADMIN)["quality"]["side_traffic"]
    assert lane["started"]["shadow"]["shadowed"] == 2
    assert lane["dropped"]["shadow"]["shadowed"] == 3
    assert wait_for(lambda: shadow_figures(gw, "shadowed")["mirrored"] == 2, timeout=10)
    figures = shadow_figures(gw, "shadowed")
    assert figures["shadow"]["latency_p50_ms"] >= 2000 > figures["primary"]["latency_p50_ms"]
    assert metric(gw, "sidecache_side_calls_total", kind="shadow", result="dropped") == 3.0


def test_a_client_that_leaves_is_not_mirrored(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(config(upstreams, tmp_path, SHADOWED))
    client = gw.client(timeout=0.5)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(
            model="shadowed", messages=[{"role": "user", "content": "[[delay:3000]] I leave"}]
        )
    assert wait_for(lambda: shadow_figures(gw, "shadowed")["skipped"] == 1, timeout=10)
    assert upstreams["u2"].stats()["requests"] == 0
