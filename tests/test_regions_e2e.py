"""Regions and plans over real HTTP: pinned keys and tenants never leave their regions (not
even on fallback), cache entries never cross region sets, and plans set a tier's limits once.

Keys are made with the real ``sidecache keys create --region / --plan``; who answered a request
is read from the answer (the fake upstreams sign it ``fp_<name>``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
from support import Gateway, UpstreamSet, basic_config, write_config
from support.counters import settled
from support.keys import Key, create_key, keys_cli
from support.traffic import ask, race

REGIONS = """
[routing.retry]
backoff_base = 0.0
backoff_max = 0.0

[routing.breaker]
failure_threshold = 1000  # half-failing targets keep their circuits closed for the next tests

[models.geo]
targets = [
    {target = "u1/gpt-x", region = "eu"},
    {target = "u2/gpt-x", region = "us"},
    {target = "u3/gpt-x", region = "eu"},
]

[models.usonly]
targets = [{target = "u2/gpt-x", region = "us"}]

[tenants.euco]
regions = ["eu"]

[plans.starter]
models = ["m1"]
rpm = 3

[plans.capped]
budget = {usd = 2, period = "day"}

[tenants.small]
plan = "starter"

[pricing."gpt-x"]
input = 0.0
output = 200000.0
"""
"""Answers of five tokens ("Answer to: <3 words>") cost exactly $1 at $200,000 per million."""


@dataclass
class Env:
    gw: Gateway
    config: Path
    keys: dict[str, Key]


@pytest.fixture(scope="module")
def env(upstreams: UpstreamSet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("regions")
    config = write_config(tmp, basic_config(upstreams, tmp, extra=REGIONS))
    keys = {
        "eu": create_key(config, "acme", "--region", "eu"),
        "open": create_key(config, "acme"),
        "euco": create_key(config, "euco"),
        "starter": create_key(config, "shop", "--plan", "starter"),
        "starter+rpm": create_key(config, "shop", "--plan", "starter", "--rpm", "10"),
        "small": create_key(config, "small"),
        "capped": create_key(config, "thrifty", "--plan", "capped"),
    }
    gw = Gateway(config).start()
    try:
        yield Env(gw, config, keys)
    finally:
        gw.stop()


def served(replies: list) -> Counter[str | None]:  # type: ignore[type-arg]
    return Counter(r.served_by for r in replies)


def test_a_pinned_key_never_leaves_its_region_with_its_targets_failing_half_the_time(
    env: Env, upstreams: UpstreamSet
) -> None:
    upstreams["u1"].control(fail_rate=0.5, fail_status=503)
    upstreams["u3"].control(fail_rate=0.5, fail_status=503)
    bodies = [ask(f"residency question {i:04d}", "geo") for i in range(1000)]
    replies = race(env.gw, bodies, key=env.keys["eu"].raw, concurrency=50)
    assert upstreams["u2"].stats()["requests"] == 0  # the only target outside the region
    codes = Counter(r.status for r in replies)
    assert set(codes) <= {200, 503} and codes[200] >= 700, codes
    assert all(r.code == "region_unavailable" for r in replies if r.status == 503)
    assert set(served(replies)) <= {"u1", "u3", None}
    in_region = upstreams["u1"].stats()["requests"] + upstreams["u3"].stats()["requests"]
    assert in_region >= 1000  # every request was tried in its region, failures retried there
    # the same key of the same tenant without a pin is served everywhere
    upstreams.reset()
    replies = race(
        env.gw, [ask(f"anywhere {i:03d}", "geo") for i in range(30)], key=env.keys["open"].raw
    )
    assert served(replies) == {"u1": 10, "u2": 10, "u3": 10}


def test_tenant_pins_headers_narrow_and_nothing_widens(env: Env, upstreams: UpstreamSet) -> None:
    euco = env.keys["euco"].raw
    replies = race(env.gw, [ask(f"tenant pinned {i:02d}", "geo") for i in range(20)], key=euco)
    assert set(served(replies)) == {"u1", "u3"}
    # an unpinned key narrows itself with the header
    us = {"extra_headers": {"x-sidecache-region": "us"}}
    replies = race(
        env.gw, [ask(f"us only {i:02d}", "geo", **us) for i in range(10)], key=env.keys["open"].raw
    )
    assert served(replies) == {"u2": 10}
    # a pinned key cannot widen itself: 403, nothing sent
    before = upstreams["u2"].stats()["requests"]
    (r,) = race(env.gw, [ask("widen", "geo", **us)], key=env.keys["eu"].raw)
    assert r.status == 403 and r.code == "region_not_allowed"
    assert r.error is not None and r.error["param"] == "x-sidecache-region"
    # an alias with no target in the region: a clear 503, never the target elsewhere
    (r,) = race(env.gw, [ask("no eu target", "usonly")], key=euco)
    assert r.status == 503 and r.code == "region_unavailable"
    assert "region eu" in r.error["message"]  # type: ignore[index]
    assert upstreams["u2"].stats()["requests"] == before
    # a malformed header is the client's mistake
    (r,) = race(env.gw, [ask("bad", "geo", extra_headers={"x-sidecache-region": "e u!"})])
    assert r.status == 400 and r.error is not None and r.error["param"] == "x-sidecache-region"


def test_cache_entries_never_cross_region_sets(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(
        basic_config(upstreams, tmp_path, cache=True, cache_extra="semantic = false", extra=REGIONS)
    )
    eu = create_key(gw.config_path, "acme", "--region", "eu").raw
    anywhere = create_key(gw.config_path, "acme").raw  # the same tenant
    q = ask("What is the residency rule?", "geo")
    outcome = lambda key, **kw: race(gw, [{**q, **kw}], key=key)[0].headers["x-sidecache"]  # noqa: E731
    assert outcome(anywhere) == "miss"
    assert outcome(anywhere) == "hit-exact"
    assert outcome(eu) == "miss"  # the unpinned answer may have come from anywhere
    assert outcome(eu) == "hit-exact"
    # narrowing to the same region set shares that set's entries
    assert outcome(anywhere, extra_headers={"x-sidecache-region": "eu"}) == "hit-exact"
    assert outcome(anywhere, extra_headers={"x-sidecache-region": "us"}) == "miss"


def test_a_plan_sets_allowlist_and_rate_limit_once(env: Env) -> None:
    starter = env.keys["starter"].raw
    with env.gw.http(starter) as http:
        listed = [m["id"] for m in http.get("/v1/models").json()["data"]]
    assert listed == ["m1"]
    (r,) = race(env.gw, [ask("not in the plan", "geo")], key=starter)
    assert r.status == 403 and r.code == "model_not_allowed"
    codes = [race(env.gw, [ask(f"plan rpm {i}", "m1")], key=starter)[0].status for i in range(4)]
    assert codes == [200, 200, 200, 429]
    # a key's own limit wins over its plan's
    own = env.keys["starter+rpm"].raw
    assert [race(env.gw, [ask(f"own rpm {i}", "m1")], key=own)[0].status for i in range(6)] == [
        200
    ] * 6
    # a tenant on a plan: its keys get the plan without naming it
    (r,) = race(env.gw, [ask("tenant plan", "geo")], key=env.keys["small"].raw)
    assert r.status == 403


def test_a_plan_budget_is_each_keys_ceiling(env: Env) -> None:
    key = env.keys["capped"].raw
    codes = [
        race(env.gw, [ask(f"paid job {i:02d}", "m1", max_tokens=5)], key=key)[0].status
        for i in range(3)
    ]
    assert codes == [200, 200, 429]
    assert settled(env.gw, 3)["tenants"]["thrifty"]["cost_usd"] == pytest.approx(2.0)


def test_the_cli_shows_and_checks_regions_and_plans(env: Env) -> None:
    listing = keys_cli(env.config, "list").stdout
    row = next(line for line in listing.splitlines() if env.keys["eu"].id in line)
    assert " eu " in row
    row = next(line for line in listing.splitlines() if env.keys["starter"].id in line)
    assert "starter" in row
    bad = keys_cli(env.config, "create", "--tenant", "x", "--plan", "gold")
    assert bad.returncode == 1 and "plan 'gold' is not defined" in bad.stderr
    bad = keys_cli(env.config, "create", "--tenant", "x", "--region", "e u")
    assert bad.returncode == 1 and "region" in bad.stderr


def test_embeddings_of_a_pinned_key_stay_in_region_too(env: Env, upstreams: UpstreamSet) -> None:
    """The embeddings path routes on its own: it honours the same regions and 503."""
    client = env.gw.client(env.keys["eu"].raw)
    for i in range(12):
        r = client.embeddings.create(model="geo", input=[f"residency text {i}", "shared text"])
        assert len(r.data) == 2
    assert upstreams["u2"].stats()["requests"] == 0
    assert upstreams["u1"].stats()["requests"] + upstreams["u3"].stats()["requests"] == 12
    with pytest.raises(openai.APIStatusError) as info:
        client.embeddings.create(model="usonly", input=["no eu target"])
    assert info.value.status_code == 503 and upstreams["u2"].stats()["requests"] == 0
