from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from sidecache.observability.metrics import OTHER, Metrics
from sidecache.observability.record import RequestRecord


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(m.render().decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def rec(outcome: str, **kw: object) -> RequestRecord:
    base: dict[str, object] = {"request_id": "r", "tenant": "acme", "model": "fast"}
    base.update(kw)
    return RequestRecord(outcome=outcome, **base)  # type: ignore[arg-type]


def test_counts_tokens_cost_and_latency() -> None:
    m = Metrics()
    m.record_request(
        rec(
            "miss",
            provider="openai",
            latency_s=0.8,
            ttft_s=0.2,
            prompt_tokens=100,
            completion_tokens=50,
            cost_usd=0.001,
        )
    )
    m.record_request(rec("hit-exact", latency_s=0.003, saved_tokens=150, saved_usd=0.001))
    m.record_request(rec("hit-semantic", latency_s=0.02, saved_tokens=140, saved_usd=0.0009))
    m.record_request(rec("bypass", provider="openai", latency_s=0.5, prompt_tokens=10))
    m.record_request(rec("error", provider="openai", latency_s=0.1, status=502))
    s = samples(m)
    labels = (("model", "fast"), ("outcome", "miss"), ("provider", "openai"), ("tenant", "acme"))
    assert s[("sidecache_requests_total", labels)] == 1
    assert (
        s[("sidecache_tokens_total", (("kind", "prompt"), ("model", "fast"), ("tenant", "acme")))]
        == 110
    )
    assert (
        s[
            (
                "sidecache_tokens_total",
                (("kind", "completion"), ("model", "fast"), ("tenant", "acme")),
            )
        ]
        == 50
    )
    assert s[("sidecache_tokens_saved_total", (("model", "fast"), ("tenant", "acme")))] == 290
    assert (
        abs(s[("sidecache_cost_usd_total", (("model", "fast"), ("tenant", "acme")))] - 0.001)
        < 1e-12
    )
    saved = s[("sidecache_cost_saved_usd_total", (("model", "fast"), ("tenant", "acme")))]
    assert abs(saved - 0.0019) < 1e-12
    assert (
        s[
            (
                "sidecache_request_latency_seconds_count",
                (("outcome", "miss"), ("provider", "openai")),
            )
        ]
        == 1
    )
    assert (
        s[
            (
                "sidecache_request_latency_seconds_bucket",
                (("le", "0.005"), ("outcome", "hit-exact"), ("provider", "")),
            )
        ]
        == 1
    )
    assert s[("sidecache_ttft_seconds_count", (("provider", "openai"),))] == 1
    # two hits, one miss; bypass and error do not count
    assert abs(s[("sidecache_cache_hit_ratio", ())] - 2 / 3) < 1e-9


def test_upstream_errors_circuits_and_cache_gauges() -> None:
    m = Metrics()
    m.record_upstream_error("openai", "timeout")
    m.record_upstream_error("openai", "timeout")
    m.record_upstream_error("anthropic", "status_529")
    m.set_circuit("openai/gpt-4o", True)
    m.set_circuit("anthropic/claude", False)
    m.set_cache_size(12, 34_567)
    s = samples(m)
    assert (
        s[("sidecache_upstream_errors_total", (("provider", "openai"), ("reason", "timeout")))] == 2
    )
    assert s[("sidecache_circuit_open", (("target", "openai/gpt-4o"),))] == 1
    assert s[("sidecache_circuit_open", (("target", "anthropic/claude"),))] == 0
    assert s[("sidecache_cache_entries", ())] == 12
    assert s[("sidecache_cache_bytes", ())] == 34_567
    assert m.content_type.startswith("text/plain")


def test_instances_do_not_share_a_registry() -> None:
    a, b = Metrics(), Metrics()
    a.record_request(rec("miss"))
    assert b"sidecache_requests_total{" not in b.render()
    assert b"sidecache_requests_total{" in a.render()


def test_client_controlled_labels_are_capped() -> None:
    m = Metrics(max_label_values=3)
    for i in range(10):
        m.record_request(rec("error", model=f"m{i}"))
    models = {
        dict(lbl)["model"] for (name, lbl) in samples(m) if name == "sidecache_requests_total"
    }
    assert models == {"m0", "m1", "m2", OTHER}


def test_record_request_is_cheap() -> None:
    m = Metrics()
    r = rec("miss", provider="openai", latency_s=0.5, ttft_s=0.1, prompt_tokens=10, cost_usd=1e-5)
    m.record_request(r)
    n = 5000
    start = time.perf_counter()
    for _ in range(n):
        m.record_request(r)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 100e-6, per_call
