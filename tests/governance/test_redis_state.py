"""Keys, limits and spend on a real ``redis-server``: the shared governance backend.

Several stores on one prefix stand for several replicas. What must hold: a change made through
one is seen by the others at once, a limit or a budget is one truth for all of them, a
settlement replayed is applied once, and while Redis is away each part follows its policy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from support.redis_server import RedisServer, redis_prefix, redis_server

from sidecache.config import LimitsConfig, RedisConfig, TenantBudget
from sidecache.errors import BadRequest, BudgetExceeded, NotFound, RateLimited, ServiceUnavailable
from sidecache.fleet.connection import connect, connect_async
from sidecache.fleet.health import RedisHealth
from sidecache.governance.keys import KeyRecord
from sidecache.governance.redis_keys import RedisKeyStore
from sidecache.governance.redis_limits import RedisLimits
from sidecache.governance.redis_spend import RedisSpend

__all__ = ["redis_prefix", "redis_server"]


def key_store(server: RedisServer, prefix: str, **kw: float) -> RedisKeyStore:
    return RedisKeyStore(connect(RedisConfig(url=server.url)), prefix, **kw)


@pytest.fixture
def stores(redis_server: RedisServer, redis_prefix: str) -> Iterator[list[RedisKeyStore]]:
    made = [key_store(redis_server, redis_prefix) for _ in range(3)]
    for s in made[1:]:
        s.start_watching()
    yield made
    for s in made:
        s.close()


def wait(cond: object, timeout: float = 2.0) -> float:
    t0 = time.monotonic()
    while not cond():  # type: ignore[operator]
        assert time.monotonic() - t0 < timeout, "not within the deadline"
        time.sleep(0.005)
    return time.monotonic() - t0


def test_keys_are_one_table_for_every_replica(stores: list[RedisKeyStore]) -> None:
    admin, a, b = stores
    raw, rec = admin.create("acme", models=["m"], rpm=10, budget_usd=3.0)
    assert admin.lookup(raw) == rec and rec.budget_period == "month"
    took = max(wait(lambda s=s: s.lookup(raw) == rec) for s in (a, b))
    assert took < 0.5
    assert a.ever_created() and a.count_active() == 1 and a.get(rec.id) == rec
    assert [r.id for r in b.list()] == [rec.id]

    t0 = time.monotonic()
    admin.revoke(rec.id)
    for s in (a, b):
        wait(lambda s=s: s.lookup(raw) is None)
        assert s.known(raw)  # 401, never anonymous
    assert time.monotonic() - t0 < 1.0
    assert [r.id for r in a.list(include_revoked=False)] == []
    with pytest.raises(NotFound):
        admin.revoke("key_nope")


def test_revoke_by_key_or_prefix_and_rotate(stores: list[RedisKeyStore]) -> None:
    admin, a, _ = stores
    raw1, rec1 = admin.create("t1")
    _, rec2 = admin.create("t2")
    assert admin.revoke(raw1).id == rec1.id  # the full key, as a user holds it
    assert admin.revoke(rec2.prefix).id == rec2.id
    with pytest.raises(BadRequest):
        admin.create("")

    old, rec = admin.create("acme", tpm=100)
    new, rotated = admin.rotate(rec.id, grace_seconds=0.4)
    assert rotated.id == rec.id and rotated.tpm == 100 and rotated.prefix != rec.prefix
    assert rotated.grace_until is not None
    wait(lambda: a.lookup(new) is not None)
    assert a.lookup(old) is not None  # the grace period
    time.sleep(0.45)
    assert a.lookup(old) is None and a.known(old) and a.lookup(new) is not None
    admin.revoke(rec.id)
    with pytest.raises(BadRequest):
        admin.rotate(rec.id, 10)


def test_known_keys_work_offline_for_a_bounded_time(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    server = RedisServer(persist=True).start()
    try:
        admin = key_store(server, redis_prefix)
        replica = key_store(server, redis_prefix, offline_seconds=0.5)
        replica.start_watching()
        raw, _ = admin.create("acme")
        wait(lambda: replica.lookup(raw) is not None)
        server.stop()
        assert replica.lookup(raw) is not None  # from the local copy
        time.sleep(0.8)
        with pytest.raises(ServiceUnavailable):
            replica.lookup(raw)
        server.start()
        wait(lambda: replica.stale_seconds < 0.5, timeout=5.0)
        assert replica.lookup(raw) is not None
        replica.close()
        admin.close()
    finally:
        server.close()


def test_a_redis_that_comes_back_empty_is_an_outage_for_keys(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    admin = key_store(redis_server, redis_prefix)
    replica = key_store(redis_server, redis_prefix, offline_seconds=0.6)
    replica.start_watching()
    raw, _ = admin.create("acme")
    admin.create("globex")
    wait(lambda: replica.lookup(raw) is not None)
    client = connect(RedisConfig(url=redis_server.url))
    client.delete(*client.keys(f"{redis_prefix}gov:*"))  # a restart without persistence
    time.sleep(0.3)
    assert replica.lookup(raw) is not None  # the known keys, for the offline bound
    wait(lambda: replica.lookup(raw) is None, timeout=3.0)  # then Redis's (empty) table
    assert not replica.ever_created()
    replica.close()
    admin.close()


def key(kid: str = "key_1", **kw: object) -> KeyRecord:
    return KeyRecord(id=kid, prefix="sk-sc-xxxxxx", tenant=str(kw.pop("tenant", "acme")), **kw)  # type: ignore[arg-type]


def limits(server: RedisServer, prefix: str, **cfg: object) -> RedisLimits:
    # a generous timeout: on a loaded machine a slow reply would count as Redis being away
    health = RedisHealth(5.0)
    client = connect_async(RedisConfig(url=server.url, timeout_seconds=5.0))
    return RedisLimits(client, prefix, health, LimitsConfig(**cfg))  # type: ignore[arg-type]


def test_rate_limits_hold_across_replicas(redis_server: RedisServer, redis_prefix: str) -> None:
    async def run() -> list[bool]:
        replicas = [limits(redis_server, redis_prefix) for _ in range(3)]
        k = key(rpm=10)

        async def one(i: int) -> bool:
            try:
                await replicas[i % 3].admit(k, 5)
            except RateLimited as exc:
                assert exc.retry_after is not None and 0 < exc.retry_after <= 6.0
                return False
            return True

        admitted = await asyncio.gather(*(one(i) for i in range(60)))
        tok = key("key_t", tpm=100)
        await replicas[0].admit(tok, 80)
        with pytest.raises(RateLimited) as err:
            await replicas[1].admit(tok, 80)
        assert "tokens per minute" in err.value.message
        replicas[0].settle(tok, 80, 10, hit=False)  # it used 10, not 80: 70 come back
        await replicas[0].aclose()
        await replicas[2].admit(tok, 80)
        return list(admitted)

    admitted = asyncio.run(run())
    assert admitted.count(True) == 10


def spend(server: RedisServer, prefix: str, url: str | None = None, **cfg: object) -> RedisSpend:
    health = RedisHealth(0.3, retry_seconds=0.2)
    client = connect_async(RedisConfig(url=url or server.url, timeout_seconds=0.3))
    return RedisSpend(
        client,
        prefix,
        health,
        LimitsConfig(**cfg),
        hold_seconds=60.0,
        replicas=lambda: 3,  # type: ignore[arg-type]
    )


def test_budgets_hold_across_replicas_and_settle_once(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    async def run() -> None:
        team = {"team": TenantBudget(usd=10.0, period="day")}
        replicas = [spend(redis_server, redis_prefix, tenant_budgets=team) for _ in range(3)]
        k = key(budget_usd=3.0, budget_period="day", tenant="team")

        async def one(i: int) -> object:
            try:
                return await replicas[i % 3].reserve(k, 1.0)
            except BudgetExceeded:
                return None

        held = [r for r in await asyncio.gather(*(one(i) for i in range(30))) if r is not None]
        assert len(held) == 3
        for i, res in enumerate(held):
            replicas[i].settle(res, k.id, k.tenant, 0.5)  # each cost half its estimate
        for r in replicas:
            await r.aclose()
        assert await replicas[0].spent("key", k.id, "day") == pytest.approx(1.5)
        assert await replicas[0].spent("tenant", "team", "month") == pytest.approx(1.5)
        # the holds are gone: $1.50 left means one more $1 estimate fits, then two do not
        await replicas[1].reserve(k, 1.0)
        await replicas[2].reserve(k, 1.0)
        with pytest.raises(BudgetExceeded) as err:
            await replicas[0].reserve(k, 1.0)
        assert "daily budget of $3.00" in err.value.message and err.value.code == "budget_exceeded"
        # a settlement replayed (its reply was lost) is applied once
        r0 = replicas[0]
        keys_args = []
        orig = r0._settle

        async def capture(keys: list[str], args: list[object]) -> object:
            keys_args.append((keys, args))
            return await orig(keys=keys, args=args)

        r0._settle = capture  # type: ignore[assignment]
        res = await replicas[1].reserve(key("key_2", budget_usd=50.0), 1.0)
        r0.settle(res, "key_2", "acme", 2.0)
        await r0.aclose()
        await orig(keys=keys_args[0][0], args=keys_args[0][1])
        assert await r0.spent("key", "key_2", "month") == pytest.approx(2.0)

    asyncio.run(run())


def test_budgets_while_redis_is_away_follow_the_policy(redis_prefix: str) -> None:
    server = RedisServer().start()

    async def run() -> None:
        open_ = spend(server, redis_prefix, url=server.url)
        closed = spend(server, redis_prefix, url=server.url, on_redis_down="closed")
        await open_.start()
        k = key(budget_usd=9.0)
        assert (await open_.reserve(k, 0.0)).slots  # seen once: $0 of $9 used
        await closed.reserve(k, 0.0)
        server.stop()
        t0 = time.monotonic()
        # open: this replica may spend its share of the $9 left, 3 replicas alive: $3
        shares = []
        for _ in range(5):
            try:
                res = await open_.reserve(k, 1.0)
            except BudgetExceeded as exc:
                shares.append(exc.code)
                continue
            shares.append("ok")
            open_.settle(res, k.id, k.tenant, 1.0)
        assert shares == ["ok", "ok", "ok", "budget_unavailable", "budget_unavailable"]
        with pytest.raises(BudgetExceeded) as err:
            await closed.reserve(k, 1.0)
        assert err.value.code == "budget_unavailable"
        with pytest.raises(BudgetExceeded):  # a budget never seen here is refused too
            await open_.reserve(key("key_new", budget_usd=100.0), 1.0)
        assert time.monotonic() - t0 < 1.5  # the breaker answers at once after the first try
        assert await open_.reserve(key("key_free"), 1.0) is not None  # no budget: no Redis
        server.start()
        await asyncio.sleep(1.2)  # the ledger is replayed once Redis answers
        assert open_.unsent == 0
        assert await open_.spent("key", k.id, "month") == pytest.approx(3.0)
        await open_.aclose()
        await closed.aclose()

    try:
        asyncio.run(run())
    finally:
        server.close()
