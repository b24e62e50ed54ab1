"""Routing strategies and upstream quotas, over real HTTP against three fake upstreams.

Each upstream is made different on purpose (its price through the upstream model name and
``[pricing]``, its latency and error rate through its ``/_control``), and the gateway is raced
as users race it: many requests in flight, no sleeps, waiting only on the gateway's counters.
Who answered a request is read from the answer itself (the fake upstreams sign it
``system_fingerprint = "fp_<name>"``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from support import Gateway, UpstreamSet, basic_config
from support.counters import gateway_stats, settled, wait_for
from support.traffic import ask, race

PRICES = {"gpt-dear": (3000.0, 6000.0), "gpt-mid": (1000.0, 2000.0), "gpt-cheap": (100.0, 200.0)}
PRICING = "".join(f'[pricing."{m}"]\ninput = {i}\noutput = {o}\n\n' for m, (i, o) in PRICES.items())
FAST_RETRY = "[routing.retry]\nbackoff_base = 0.0\nbackoff_max = 0.0\n\n"
THREE_PRICES = (
    'targets = [{target = "u1/gpt-dear"}, {target = "u2/gpt-mid"}, {target = "u3/gpt-cheap"}]'
)
SAME_MODEL = 'targets = [{target = "u1/gpt-x"}, {target = "u2/gpt-x"}, {target = "u3/gpt-x"}]'


def cost(model: str, prompt: int, completion: int) -> float:
    i, o = PRICES[model]
    return (prompt * i + completion * o) / 1_000_000


def gateway(
    upstreams: UpstreamSet,
    factory: Callable[..., Gateway],
    tmp_path: Path,
    models: str,
    extra: str = "",
) -> Gateway:
    return factory(basic_config(upstreams, tmp_path, extra=PRICING + FAST_RETRY + extra + models))


def served(replies: list) -> Counter[str | None]:  # type: ignore[type-arg]
    return Counter(r.served_by for r in replies)


# -- cheapest ----------------------------------------------------------------------------------


def test_cheapest_sends_each_request_where_it_costs_least(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    models = f"""
[models.batch]
strategy = "cheapest"
{THREE_PRICES}

[models.tie]
strategy = "cheapest"
targets = [{{target = "u1/gpt-cheap"}}, {{target = "u2/gpt-cheap"}}, {{target = "u3/gpt-dear"}}]
"""
    gw = gateway(upstreams, gateway_factory, tmp_path, models)
    replies = race(gw, [ask(f"batch job {i:03d}", "batch") for i in range(40)])
    assert served(replies) == {"u3": 40}
    doc = settled(gw, 40)
    # "batch job NNN": 3 prompt tokens; "Answer to: batch job NNN": 5 completion tokens
    assert doc["models"]["batch"]["cost_usd"] == pytest.approx(40 * cost("gpt-cheap", 3, 5))
    # equal prices take turns; the dear one is never first
    replies = race(gw, [ask(f"tie job {i:03d}", "tie") for i in range(40)])
    assert served(replies) == {"u1": 20, "u2": 20}
    # the cheapest failing: the next cheapest answers, never the dearest while it can
    upstreams.reset()
    upstreams["u3"].control(fail_status=500)
    replies = race(gw, [ask(f"fallback job {i:03d}", "batch") for i in range(10)])
    assert served(replies) == {"u2": 10}
    assert upstreams["u1"].stats()["requests"] == 0


def test_cheapest_weighs_the_request_size(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    """Input-cheap vs output-cheap: a long prompt and a long answer go different ways."""
    extra = (
        '[pricing."gpt-in"]\ninput = 100.0\noutput = 9000.0\n\n'
        '[pricing."gpt-out"]\ninput = 2000.0\noutput = 500.0\n\n'
    )
    models = """
[models.sized]
strategy = "cheapest"
targets = [{target = "u1/gpt-in"}, {target = "u2/gpt-out"}]
"""
    gw = gateway(upstreams, gateway_factory, tmp_path, models, extra)
    long_prompt = "word " * 400
    replies = race(
        gw,
        [ask(long_prompt + str(i), "sized", max_tokens=5) for i in range(5)]
        + [ask(f"short {i}", "sized", max_tokens=2000) for i in range(5)],
    )
    assert [r.served_by for r in replies] == ["u1"] * 5 + ["u2"] * 5


# -- fastest -----------------------------------------------------------------------------------


def test_fastest_prefers_the_quick_target_and_notices_a_recovery(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    models = f"""
[routing.health]
half_life_seconds = 1.0
window = 20
explore_share = 0.1

[models.chat]
strategy = "fastest"
{SAME_MODEL}
"""
    gw = gateway(upstreams, gateway_factory, tmp_path, models)
    u1, u2, u3 = upstreams["u1"], upstreams["u2"], upstreams["u3"]
    u1.control(delay_ms=150)
    u2.control(delay_ms=5)
    u3.control(delay_ms=60)
    replies = race(gw, [ask(f"quick {i:03d}", "chat") for i in range(120)], concurrency=4)
    assert all(r.status == 200 for r in replies)
    counts = served(replies)
    assert counts["u2"] >= 95, counts  # ~90% plus its share of the exploration
    assert counts["u1"] >= 1 and counts["u3"] >= 1, counts  # exploration measured the others
    targets = gateway_stats(gw)["targets"]
    assert targets["u2/gpt-x"]["latency_ms"] < targets["u3/gpt-x"]["latency_ms"]
    assert targets["u3/gpt-x"]["latency_ms"] < targets["u1/gpt-x"]["latency_ms"]

    # u2 becomes slow and u1 recovers: within a few seconds u1 carries the traffic
    u2.control(delay_ms=200)
    u1.control(delay_ms=0)
    # bounded by requests, not seconds: exploring is per request, so a loaded machine (slower
    # requests) gets the same number of tries; the time cap only stops a broken router
    last: list[str | None] = []
    deadline = time.monotonic() + 120
    while len(last) < 400 and time.monotonic() < deadline:
        last += [r.served_by for r in race(gw, [ask("again", "chat", max_tokens=5)] * 1)]
        if len(last) >= 20 and last[-20:].count("u1") >= 16:
            break
    assert last[-20:].count("u1") >= 16, Counter(last[-20:])


# -- least-busy --------------------------------------------------------------------------------


def test_least_busy_keeps_away_from_a_target_holding_a_long_request(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    models = f'[models.busy]\nstrategy = "least-busy"\n{SAME_MODEL}\n'
    gw = gateway(upstreams, gateway_factory, tmp_path, models)
    slow = "[[slow_on:u1:2000]][[slow_on:u2:2000]][[slow_on:u3:2000]] long job"
    background = threading.Thread(target=race, args=(gw, [ask(slow, "busy")]))
    background.start()
    assert wait_for(lambda: sum(u.stats()["in_flight"] for u in upstreams) == 1)
    busy = next(u.name for u in upstreams if u.stats()["in_flight"] == 1)
    replies = race(gw, [ask(f"short job {i:03d}", "busy") for i in range(30)], concurrency=1)
    counts = served(replies)
    assert busy not in counts and sum(counts.values()) == 30, counts
    assert len(counts) == 2 and min(counts.values()) >= 10  # the idle two take turns
    background.join()


# -- reliable ----------------------------------------------------------------------------------


def test_reliable_moves_away_from_a_failing_target_then_latency_decides(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    models = f"""
[routing.breaker]
failure_threshold = 1000

[models.safe]
strategy = "reliable"
{SAME_MODEL}
"""
    gw = gateway(upstreams, gateway_factory, tmp_path, models)
    u1, u2, u3 = upstreams["u1"], upstreams["u2"], upstreams["u3"]
    u1.control(fail_rate=0.6)  # fast, but fails more often than not
    u2.control(delay_ms=40)
    u3.control(delay_ms=5)
    replies = race(gw, [ask(f"careful {i:03d}", "safe") for i in range(80)], concurrency=4)
    assert all(r.status == 200 for r in replies)  # failures were retried on the others
    counts = served(replies)
    assert u1.stats()["requests"] <= 8, u1.stats()
    assert counts["u3"] >= 60, counts
    assert gateway_stats(gw)["targets"]["u1/gpt-x"]["error_rate"] > 0.3


# -- upstream quotas ---------------------------------------------------------------------------


def test_a_saturated_target_is_routed_around(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    models = """
[models.q]
strategy = "fallback"
targets = [{target = "u1/gpt-x", rpm = 5}, {target = "u2/gpt-x"}]
"""
    gw = gateway(upstreams, gateway_factory, tmp_path, models)
    replies = race(gw, [ask(f"quota job {i:03d}", "q") for i in range(30)])
    assert all(r.status == 200 for r in replies)
    assert served(replies) == {"u1": 5, "u2": 25}
    assert upstreams["u1"].stats()["errors_injected"] == 0
    assert gateway_stats(gw)["targets"]["u1/gpt-x"]["rpm_free"] < 1


def test_when_every_target_is_full_requests_wait_then_get_429(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    models = """
[routing]
queue_timeout_seconds = 1.5

[models.q]
targets = [{target = "u1/gpt-x", rpm = 60}, {target = "u2/gpt-x", rpm = 60}]
"""
    gw = gateway(upstreams, gateway_factory, tmp_path, models)
    # 120 go at once; the next ones wait for capacity (one per second per target); those
    # that would wait past the queue timeout are refused as soon as that is known
    replies = race(gw, [ask(f"full job {i:03d}", "q") for i in range(126)], concurrency=126)
    ok = [r for r in replies if r.status == 200]
    refused = [r for r in replies if r.status != 200]
    assert 122 <= len(ok) <= 124, Counter(r.status for r in replies)  # 120 + ~1 per second each
    assert {r.status for r in refused} == {429}
    assert all(r.code == "upstream_capacity" for r in refused)
    assert all(1 <= int(r.headers["retry-after"]) <= 2 for r in refused)
    assert max(r.latency_s for r in ok) >= 0.9  # some waited for capacity, and got it
    # the providers never saw more than their limit: no 429 passed through, none sent
    sent = upstreams["u1"].stats()["requests"] + upstreams["u2"].stats()["requests"]
    assert sent == len(ok)
    assert max(upstreams["u1"].stats()["requests"], upstreams["u2"].stats()["requests"]) <= 62
    doc = settled(gw, 126)
    assert doc["outcomes"]["error"] == len(refused)


def test_tokens_per_minute_count_the_expected_size_then_the_real_usage(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    models = """
[routing]
queue_timeout_seconds = 0

[models.t]
targets = [{target = "u1/gpt-x", tpm = 400}]
"""
    gw = gateway(upstreams, gateway_factory, tmp_path, models)
    # each holds ~300 tokens (max_tokens) while in flight: only one fits at a time
    bodies = [ask(f"[[delay:300]] big job {i}", "t", max_tokens=290) for i in range(4)]
    replies = race(gw, bodies)
    assert sorted(r.status for r in replies) == [200, 429, 429, 429]
    # the answer used ~10 tokens, not 300: the next requests fit one after another
    for i in range(5):
        assert race(gw, [ask(f"next job {i}", "t", max_tokens=290)])[0].status == 200
