from __future__ import annotations

import orjson
import pytest

from sidecache.observability.record import RequestRecord
from sidecache.observability.stats import OTHER, Stats, percentile

T0 = 1_800_000_000.0  # a multiple of 10


def rec(outcome: str, **kw: object) -> RequestRecord:
    base: dict[str, object] = {"request_id": "r", "tenant": "acme", "model": "fast"}
    base.update(kw)
    return RequestRecord(outcome=outcome, **base)  # type: ignore[arg-type]


def test_percentile() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.95) == 3.0
    data = [float(i) for i in range(1, 101)]
    assert percentile(data, 0.5) == 50.0
    assert percentile(data, 0.95) == 95.0


def test_totals_hit_rates_and_slices() -> None:
    st = Stats()
    st.record(rec("hit-exact", saved_tokens=100, saved_usd=0.01, latency_s=0.002), now=T0)
    st.record(rec("hit-semantic", saved_tokens=80, saved_usd=0.008, latency_s=0.02), now=T0)
    st.record(
        rec(
            "miss",
            provider="openai",
            prompt_tokens=60,
            completion_tokens=40,
            cost_usd=0.01,
            latency_s=1.0,
            ttft_s=0.3,
            usage_estimated=True,
            tenant="globex",
            model="smart",
        ),
        now=T0 + 1,
    )
    st.record(rec("miss", provider="openai", latency_s=2.0, ttft_s=0.5), now=T0 + 2)
    st.record(rec("bypass", provider="anthropic", latency_s=0.7), now=T0 + 3)
    st.record(rec("error", provider="anthropic", latency_s=0.1, status=504), now=T0 + 4)
    st.record_upstream_error("anthropic", "upstream_timeout")
    st.record_upstream_error("anthropic", "upstream_timeout")
    snap = st.snapshot({"cache": {"entries": 2}, "circuits": {"openai/x": "closed"}}, now=T0 + 5)
    orjson.dumps(snap)  # JSON-ready

    tot = snap["totals"]
    assert tot["requests"] == 6
    assert tot["hits"] == 2 and tot["misses"] == 2 and tot["bypass"] == 1 and tot["errors"] == 1
    assert tot["saved_tokens"] == 180 and tot["prompt_tokens"] == 60
    assert tot["cost_usd"] == pytest.approx(0.01) and tot["saved_usd"] == pytest.approx(0.018)
    assert tot["usage_estimated"] == 1
    assert snap["hit_rate"] == {"overall": 0.5, "exact": 0.25, "semantic": 0.25}
    assert snap["outcomes"] == {
        "hit-exact": 1,
        "hit-semantic": 1,
        "miss": 2,
        "bypass": 1,
        "error": 1,
    }
    assert snap["tenants"]["acme"]["requests"] == 5
    assert snap["tenants"]["globex"]["cost_usd"] == pytest.approx(0.01)
    assert snap["models"]["fast"]["hit_rate"] == pytest.approx(2 / 3)
    assert snap["latency_by_outcome"]["miss"] == {"p50_ms": 1000.0, "p95_ms": 2000.0}

    openai = snap["providers"]["openai"]
    assert openai["requests"] == 2 and openai["errors"] == 0
    assert openai["latency_p50_ms"] == 1000.0 and openai["latency_p95_ms"] == 2000.0
    assert openai["ttft_p50_ms"] == 300.0
    anthropic = snap["providers"]["anthropic"]
    assert anthropic["requests"] == 2 and anthropic["errors"] == 1
    assert anthropic["error_rate"] == 0.5
    assert anthropic["errors_by_reason"] == {"upstream_timeout": 2}
    assert anthropic["ttft_p50_ms"] is None
    assert "" not in snap["providers"]  # cache hits have no provider

    assert snap["cache"] == {"entries": 2}
    assert snap["circuits"] == {"openai/x": "closed"}


def test_tags_are_bounded() -> None:
    st = Stats(max_tags=2)
    for i in range(5):
        st.record(rec("miss", tags={"team": f"t{i}"}), now=T0)
    tags = st.snapshot(now=T0)["tags"]
    assert set(tags) == {"team=t0", "team=t1", OTHER}
    assert tags[OTHER]["requests"] == 3


def test_series_buckets_zero_fill_and_window() -> None:
    st = Stats(bucket_seconds=10, window_seconds=60)
    st.record(rec("miss", cost_usd=0.5, prompt_tokens=7), now=T0 + 1)
    st.record(rec("hit-exact", saved_usd=0.25), now=T0 + 9)
    st.record(rec("error"), now=T0 + 31)
    series = st.snapshot(now=T0 + 35)["series"]
    assert series["bucket_seconds"] == 10
    pts = series["points"]
    assert [p["t"] for p in pts] == [T0, T0 + 10, T0 + 20, T0 + 30]
    assert pts[0]["miss"] == 1 and pts[0]["hit-exact"] == 1 and pts[0]["cost_usd"] == 0.5
    assert pts[0]["tokens"] == 7 and pts[0]["saved_usd"] == 0.25
    assert pts[1]["miss"] == 0 and pts[1]["cost_usd"] == 0.0
    assert pts[3]["error"] == 1
    # an hour later only the window is kept
    st.record(rec("miss"), now=T0 + 3600)
    pts = st.snapshot(now=T0 + 3605)["series"]["points"]
    assert len(pts) == 6
    assert pts[-1]["t"] == T0 + 3600 and pts[-1]["miss"] == 1
    assert sum(p["error"] for p in pts) == 0
    assert len(st._series) <= 7


def test_empty_snapshot() -> None:
    snap = Stats().snapshot()
    assert snap["totals"]["requests"] == 0
    assert snap["hit_rate"]["overall"] == 0.0
    assert snap["series"]["points"] == []
    assert snap["providers"] == {}


def test_latency_samples_are_bounded() -> None:
    st = Stats(latency_samples=16)
    for i in range(100):
        st.record(rec("miss", provider="p", latency_s=float(i)), now=T0)
    p = st.snapshot(now=T0)["providers"]["p"]
    assert p["requests"] == 100
    assert p["latency_p50_ms"] >= 84_000  # only the most recent 16 samples count
