"""Strategies order targets from what a request costs and what the targets did lately."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from sidecache.config import RoutingConfig
from sidecache.routing.choice import Choice, RouteRequest, rank
from sidecache.routing.health import TargetHealth
from sidecache.routing.strategies import STRATEGIES

PRICES = {"dear": (10.0, 30.0), "mid": (2.0, 8.0), "cheap": (0.5, 1.5)}


@dataclass
class T:
    upstream_model: str
    health: TargetHealth = field(default_factory=TargetHealth)


def price(model: str, prompt: int, completion: int) -> float | None:
    if model not in PRICES:
        return None
    i, o = PRICES[model]
    return (prompt * i + completion * o) / 1e6


def choice(targets: list[T], **kw: object) -> Choice:
    return Choice(targets, RouteRequest(**kw), price)  # type: ignore[arg-type]


def make(name: str, n: int) -> object:
    return STRATEGIES[name]([1.0] * n, RoutingConfig())


def test_rank_orders_by_score_and_equals_take_turns() -> None:
    assert rank([3.0, 1.0, 2.0], 0) == [1, 2, 0]
    assert [rank([1.0, 1.0, 5.0], k)[:2] for k in range(3)] == [[0, 1], [1, 0], [0, 1]]
    assert rank([None, 2.0, 1.0], 0) == [2, 1, 0]
    assert rank([None, 2.0, 1.0], 0, unknown_first=True) == [0, 2, 1]


def test_cheapest_uses_prices_and_the_request_size() -> None:
    targets = [T("dear"), T("mid"), T("cheap"), T("unpriced")]
    s = make("cheapest", 4)
    assert s.order(choice(targets, prompt_tokens=100, completion_tokens=50)) == [2, 1, 0, 3]  # type: ignore[attr-defined]
    # input-heavy vs output-heavy flips the order between two other prices
    PRICES["in-cheap"], PRICES["out-cheap"] = (1.0, 20.0), (5.0, 2.0)
    pair = [T("in-cheap"), T("out-cheap")]
    assert s.order(choice(pair, prompt_tokens=10_000, completion_tokens=10))[0] == 0  # type: ignore[attr-defined]
    assert s.order(choice(pair, prompt_tokens=10, completion_tokens=10_000))[0] == 1  # type: ignore[attr-defined]


def test_cheapest_ties_are_round_robin() -> None:
    s = make("cheapest", 3)
    targets = [T("mid"), T("mid"), T("dear")]
    firsts = Counter(s.order(choice(targets, prompt_tokens=5))[0] for _ in range(100))  # type: ignore[attr-defined]
    assert firsts == {0: 50, 1: 50}


def fed(latencies: list[float], failures: int = 0) -> TargetHealth:
    h = TargetHealth()
    for x in latencies:
        h.first_byte(h.clock() - x)
        h.finished(h.clock() - x)
        h.outcome(True)
    for _ in range(failures):
        h.outcome(False)
    return h


def test_fastest_prefers_low_latency_explores_and_tries_the_unmeasured() -> None:
    targets = [T("a", fed([0.2] * 20)), T("b", fed([0.02] * 20)), T("c", fed([0.1] * 20))]
    s = STRATEGIES["fastest"]([1.0] * 3, RoutingConfig())
    s._rng = random.Random(7)  # type: ignore[attr-defined]
    firsts = Counter(s.order(choice(targets))[0] for _ in range(2000))
    assert firsts[1] > 1850 and firsts[0] > 20 and firsts[2] > 20  # ~5% explore the others
    quiet = make("fastest", 4)
    quiet.explore = 0.0  # type: ignore[attr-defined]
    assert quiet.order(choice([*targets, T("d")]))[0] == 3  # type: ignore[attr-defined]


def test_fastest_probes_an_unmeasured_target_one_request_at_a_time() -> None:
    quick, new = T("a", fed([0.02] * 20)), T("d")
    s = make("fastest", 2)
    s.explore = 0.0  # type: ignore[attr-defined]
    assert s.order(choice([quick, new]))[0] == 1  # never measured: it goes first
    started = new.health.begin()  # its first request is out (and slow)
    assert [s.order(choice([quick, new]))[0] for _ in range(10)] == [0] * 10  # type: ignore[attr-defined]
    new.health.first_byte(started - 0.3)
    new.health.finished(started - 0.3)
    new.health.outcome(True)
    new.health.end()
    assert s.order(choice([quick, new]))[0] == 0  # type: ignore[attr-defined]  # measured: slower


def test_fastest_counts_errors_and_p95() -> None:
    flaky = T("a", fed([0.02] * 20, failures=100))  # quick, but mostly failing
    steady = T("b", fed([0.05] * 20))
    spiky = T("c", fed([0.01] * 15 + [2.0] * 5))  # quick on average, slow tail
    s = make("fastest", 3)
    s.explore = 0.0  # type: ignore[attr-defined]
    assert s.order(choice([flaky, steady, spiky]))[0] == 1  # type: ignore[attr-defined]


def test_least_busy_and_reliable() -> None:
    a, b, c = T("a"), T("b"), T("c")
    a.health.in_flight, b.health.in_flight, c.health.in_flight = 5, 1, 3
    assert make("least-busy", 3).order(choice([a, b, c])) == [1, 2, 0]  # type: ignore[attr-defined]
    ok_slow = T("x", fed([0.3] * 20))
    ok_fast = T("y", fed([0.1] * 20))
    bad_fast = T("z", fed([0.01] * 20, failures=10))
    assert make("reliable", 3).order(choice([bad_fast, ok_slow, ok_fast])) == [2, 1, 0]  # type: ignore[attr-defined]


def test_an_error_rate_fades_while_the_target_rests() -> None:
    now = [0.0]
    h = TargetHealth(half_life=10.0, clock=lambda: now[0])
    for _ in range(10):
        h.outcome(False)
    assert h.error_rate() > 0.6
    now[0] = 40.0
    assert h.error_rate() == 0.0625  # four half-lives
