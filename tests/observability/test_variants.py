"""Per-variant figures, and dollars per 1K tokens in every slice."""

from __future__ import annotations

from sidecache.observability.record import RequestRecord
from sidecache.observability.recorder import Recorder


def rec(**kw: object) -> RequestRecord:
    base: dict[str, object] = {"request_id": "r", "outcome": "miss", "tenant": "t", "model": "m"}
    return RequestRecord(**{**base, **kw})  # type: ignore[arg-type]


def test_variant_rows_and_cost_per_1k() -> None:
    r = Recorder()
    for i in range(10):
        r.record(
            rec(
                variant="a",
                provider="p1",
                prompt_tokens=600,
                completion_tokens=400,
                cost_usd=0.002,
                latency_s=0.1 + i / 100,
            )
        )
    r.record(rec(variant="a", outcome="hit-exact", saved_usd=0.002, latency_s=0.001))
    r.record(
        rec(
            variant="b",
            provider="p2",
            prompt_tokens=500,
            completion_tokens=500,
            cost_usd=0.0005,
            latency_s=0.3,
            fallback=True,
        )
    )
    r.record(rec(variant="b", provider="p2", outcome="error", status=502, latency_s=0.05))
    doc = r.snapshot()
    a, b = doc["variants"]["m"]["a"], doc["variants"]["m"]["b"]
    assert (a["requests"], a["hits"], a["misses"], a["error_rate"]) == (11, 1, 10, 0.0)
    assert a["hit_rate"] == 1 / 11 and a["cost_per_1k_tokens"] == 0.002
    assert a["latency_p50_ms"] == 140.0  # hits are not a model's latency
    assert (b["fallbacks"], b["errors"], b["error_rate"]) == (1, 1, 1.0)
    assert b["cost_per_1k_tokens"] == 0.0005
    assert doc["models"]["m"]["cost_per_1k_tokens"] == round(0.0205 / 11, 6)
    assert doc["providers"]["p1"]["cost_per_1k_tokens"] == 0.002
    assert doc["tenants"]["t"]["cost_per_1k_tokens"] is not None
    r.routing.refresh(doc, {"p/x": {"latency_ms": 12.0, "error_rate": 0.5, "in_flight": 2}})
    text = r.metrics.render().decode()
    assert 'sidecache_variant_requests_total{model="m",outcome="miss",variant="a"} 10.0' in text
    assert 'sidecache_cost_per_1k_tokens_usd{by="variant",name="m/b"} 0.0005' in text
    assert 'sidecache_target_error_rate{target="p/x"} 0.5' in text


def test_no_variant_no_row() -> None:
    r = Recorder()
    r.record(rec(provider="p", prompt_tokens=1, cost_usd=0.1))
    assert r.snapshot()["variants"] == {}
