"""A/B splits and cost per 1K tokens, over real HTTP against two differently priced and
differently fast fake upstreams, with the cache on (exact layer) so hit rates are real."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from support import Gateway, UpstreamSet, basic_config
from support.counters import settled
from support.keys import create_key
from support.traffic import ask, race

AB = """
[routing.retry]
backoff_base = 0.0
backoff_max = 0.0

[routing.breaker]
failure_threshold = 1000

[pricing."gpt-a"]
input = 1000.0
output = 2000.0

[pricing."gpt-b"]
input = 100.0
output = 400.0

[models.ab]
sticky = "user"
variants = [
    {target = "u1/gpt-a", share = 0.8, name = "control"},
    {target = "u2/gpt-b", share = 0.2, name = "candidate"},
]

[models.abk]
variants = [{target = "u1/gpt-a", share = 1}, {target = "u2/gpt-b", share = 1}]
"""
# "variant question NNNN": 3 prompt tokens, 5 completion tokens (8 in all) at each price
PER_1K = {"control": (3 * 1000 + 5 * 2000) / 8 / 1000, "candidate": (3 * 100 + 5 * 400) / 8 / 1000}


@pytest.fixture
def gw(upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path) -> Gateway:
    config = basic_config(upstreams, tmp_path, cache=True, cache_extra="semantic = false", extra=AB)
    return gateway_factory(config)


def test_a_split_holds_its_shares_sticks_per_user_and_reports_each_arm(
    gw: Gateway, upstreams: UpstreamSet
) -> None:
    upstreams["u2"].control(delay_ms=150)  # the candidate is slower and cheaper
    tags = {"x-sidecache-tags": "team=search"}
    bodies = [
        ask(f"variant question {i:04d}", "ab", user=f"user-{i}", extra_headers=tags)
        for i in range(1000)
    ]
    first = race(gw, bodies, concurrency=20)
    assert all(r.status == 200 for r in first)
    arm = [r.headers["x-sidecache-variant"] for r in first]
    share = arm.count("control") / 1000
    assert 0.76 <= share <= 0.84, share
    assert all(
        r.served_by == ("u1" if a == "control" else "u2") for r, a in zip(first, arm, strict=True)
    )
    # the same users again, with their same questions and with new ones: same arm every time
    again = race(gw, bodies[:100], concurrency=50)
    fresh = race(gw, [ask(f"another question {i:04d}", "ab", user=f"user-{i}") for i in range(100)])
    assert [r.headers["x-sidecache-variant"] for r in again] == arm[:100]
    assert [r.headers["x-sidecache-variant"] for r in fresh] == arm[:100]
    assert {r.headers["x-sidecache"] for r in again} == {"hit-exact"}  # answered in its arm

    doc = settled(gw, 1200)
    rows = doc["variants"]["ab"]
    repeat = Counter(arm[:100])
    for name in ("control", "candidate"):
        row = rows[name]
        assert row["requests"] == arm.count(name) + 2 * repeat[name]
        assert row["hits"] == repeat[name] and row["error_rate"] == 0.0
        assert row["hit_rate"] == pytest.approx(repeat[name] / (arm.count(name) + 2 * repeat[name]))
        assert row["cost_per_1k_tokens"] == pytest.approx(PER_1K[name], rel=0.02)
    assert rows["candidate"]["latency_p50_ms"] >= rows["control"]["latency_p50_ms"] + 75
    assert rows["candidate"]["latency_p95_ms"] >= rows["candidate"]["latency_p50_ms"]
    # cost per 1K tokens is a figure of every slice
    assert doc["providers"]["u2"]["cost_per_1k_tokens"] == pytest.approx(PER_1K["candidate"])
    assert doc["tags"]["team=search"]["cost_per_1k_tokens"] is not None
    for section in ("models", "tenants"):
        assert doc[section]["ab" if section == "models" else "anonymous"]["cost_per_1k_tokens"]

    # the candidate's target fails half the time: the client never sees it (the control
    # target answers), but the candidate's error rate does
    upstreams["u2"].control(fail_rate=0.5)
    replies = race(gw, [ask(f"flaky {i:04d}", "ab", user=f"user-{i}") for i in range(400)])
    assert all(r.status == 200 for r in replies)
    rows = settled(gw, 1600)["variants"]["ab"]
    assert rows["candidate"]["fallbacks"] > 20 and rows["candidate"]["error_rate"] > 0.1
    assert rows["control"]["fallbacks"] == 0 and rows["control"]["error_rate"] == 0.0

    with gw.http() as http:
        text = http.get("/metrics").text
    assert 'sidecache_variant_requests_total{model="ab",outcome="miss",variant="control"}' in text
    line = next(
        x
        for x in text.splitlines()
        if x.startswith('sidecache_cost_per_1k_tokens_usd{by="provider",name="u1"')
    )
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(PER_1K["control"], rel=0.02)
    assert 'sidecache_cost_per_1k_tokens_usd{by="variant",name="ab/candidate"}' in text
    assert 'sidecache_target_latency_seconds{estimate="total",target="u2/gpt-b"}' in text


def test_a_split_sticks_per_key_by_default(gw: Gateway, upstreams: UpstreamSet) -> None:
    keys = [create_key(gw.config_path, f"team{i}").raw for i in range(4)]
    seen: dict[str, set[str]] = {}
    for key in keys:
        replies = race(gw, [ask(f"keyed {i:03d}", "abk") for i in range(12)], key=key)
        seen[key] = {r.headers["x-sidecache-variant"] for r in replies}
        assert {r.served_by for r in replies} == {"u1" if seen[key] == {"u1/gpt-a"} else "u2"}
    assert all(len(v) == 1 for v in seen.values()), seen
