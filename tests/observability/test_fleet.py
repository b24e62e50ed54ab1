"""Summing replicas' ``/stats`` documents: counts add, rates are recomputed, percentiles are the
slowest replica's, series add bucket by bucket, and a shared cache is not counted twice."""

from __future__ import annotations

import copy

import pytest

from sidecache.observability.fleet import merge
from sidecache.observability.record import RequestRecord
from sidecache.observability.stats import Stats


def doc(outcomes: list[str], *, latency: float, cost: float, t0: float) -> dict[str, object]:
    stats = Stats(bucket_seconds=10, window_seconds=3600)
    for i, outcome in enumerate(outcomes):
        stats.record(
            RequestRecord(
                request_id=str(i),
                outcome=outcome,  # type: ignore[arg-type]
                tenant="acme",
                model="m",
                provider="u1" if outcome != "hit-exact" else "",
                latency_s=latency,
                cost_usd=cost if outcome == "miss" else 0.0,
            ),
            now=t0 + i,
        )
    out = stats.snapshot(
        {"circuits": {"u1/x": "closed"}, "in_flight": 1, "cache": {"entries": 7, "hits": 2}},
        now=t0 + 30,
    )
    return out


def test_counts_add_rates_follow_and_percentiles_are_the_slowest() -> None:
    a = doc(["miss", "hit-exact", "hit-exact"], latency=0.01, cost=1.0, t0=1000.0)
    b = doc(["miss", "miss", "error"], latency=0.05, cost=0.5, t0=1000.0)
    b["circuits"] = {"u1/x": "open", "u2/x": "closed"}
    merged = merge([copy.deepcopy(a), copy.deepcopy(b)], shared_cache=True)
    totals = merged["totals"]
    assert totals["requests"] == 6 and totals["hits"] == 2 and totals["misses"] == 3
    assert totals["hit_rate"] == pytest.approx(2 / 5)
    assert merged["hit_rate"]["overall"] == pytest.approx(2 / 5)
    assert totals["cost_usd"] == pytest.approx(2.0)
    assert merged["tenants"]["acme"]["requests"] == 6
    assert merged["providers"]["u1"]["requests"] == 4
    assert merged["providers"]["u1"]["error_rate"] == pytest.approx(1 / 4)
    assert merged["providers"]["u1"]["latency_p50_ms"] == pytest.approx(50.0)  # the slowest
    assert merged["in_flight"] == 2
    assert merged["circuits"] == {"u1/x": "open", "u2/x": "closed"}
    assert merged["cache"]["entries"] == 7 and merged["cache"]["hits"] == 4  # one store
    points = merged["series"]["points"]
    assert sum(p["miss"] for p in points) == 3 and len({p["t"] for p in points}) == len(points)
    assert merge([copy.deepcopy(a), copy.deepcopy(b)], shared_cache=False)["cache"]["entries"] == 14


def test_one_replica_is_itself() -> None:
    a = doc(["miss"], latency=0.01, cost=1.0, t0=5000.0)
    assert merge([copy.deepcopy(a)], shared_cache=True)["totals"] == a["totals"]
