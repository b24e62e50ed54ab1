"""The Redis store against a real ``redis-server``: the SQLite store's behaviour, the change
stream, start-up and outage handling, and two ``SemanticCache`` replicas kept in step."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import numpy as np
import pytest
from support.redis_server import RedisServer, redis_prefix, redis_server
from support.stores import put

from sidecache.cache.embedder import Embedder
from sidecache.cache.entries import ChangeLogGap, Subscribable
from sidecache.cache.redis_store import RedisStore, redact_url
from sidecache.cache.semantic import SemanticCache
from sidecache.config import CacheConfig, RedisConfig, from_dict
from sidecache.errors import ServiceUnavailable

# The SQLite store's behaviour tests, collected again here: they run on this module's ``store``.
from .test_semantic import completion, request
from .test_store import (
    entry,
    test_delete_and_flush_filters,
    test_expired,
    test_lru_victims_are_least_recently_hit,
    test_put_get_round_trip,
    test_recent_newest_first,
    test_same_key_hash_replaces_the_older_entry,
    test_size_bytes_grows,
    test_touch_is_buffered_and_counts,
)

__all__ = [
    "redis_prefix",
    "redis_server",
    "test_delete_and_flush_filters",
    "test_expired",
    "test_lru_victims_are_least_recently_hit",
    "test_put_get_round_trip",
    "test_recent_newest_first",
    "test_same_key_hash_replaces_the_older_entry",
    "test_size_bytes_grows",
    "test_touch_is_buffered_and_counts",
]

T = TypeVar("T")


def open_store(server: RedisServer, prefix: str, **kw: Any) -> RedisStore:
    return RedisStore.from_config(RedisConfig(url=server.url, key_prefix=prefix, **kw))


@pytest.fixture
def store(redis_server: RedisServer, redis_prefix: str) -> Iterator[RedisStore]:
    s = open_store(redis_server, redis_prefix)
    yield s
    s.close()


# -- the store ---------------------------------------------------------------------------------


def test_entries_survive_a_new_store(redis_server: RedisServer, redis_prefix: str) -> None:
    s = open_store(redis_server, redis_prefix)
    ids = [put(s, entry(f"k{i}")) for i in range(5)]
    s.touch(ids[0], 1234.0)
    s.close()  # writes the buffered hit
    s2 = open_store(redis_server, redis_prefix)
    assert s2.count() == 5
    assert [e.id for e in s2.iter_all()] == ids
    assert [(i, sc) for i, sc, _ in s2.iter_vectors()] == [(i, "s1") for i in ids]
    first = s2.get(ids[0])
    assert first is not None and first.hits == 1 and first.last_hit == 1234.0
    assert s2.lru_victims(4) == [ids[1]]  # the hit moved the oldest entry up
    s2.close()


def test_replace_drops_the_old_entry_and_its_expiry(store: RedisStore) -> None:
    i = put(store, entry("k", expires_at=1500.0))
    store.touch(i, 1400.0)
    j = put(store, entry("k", created=1450.0))  # no expiry any more
    assert j != i and store.get(i) is None and store.count() == 1
    got = store.get(j)
    assert got is not None and got.hits == 0 and got.last_hit == 1450.0
    assert got.expires_at is None and store.expired(5000.0) == []
    assert store.lru_victims(0) == [j]


def test_prefixes_keep_deployments_apart(redis_server: RedisServer, redis_prefix: str) -> None:
    a = open_store(redis_server, redis_prefix + "a:")
    b = open_store(redis_server, redis_prefix + "b:")
    ia = put(a, entry("same"))
    assert b.get_by_key_hash(entry("same").key_hash) is None and b.count() == 0
    ib = put(b, entry("same"))
    assert ia == ib == 1  # each deployment has its own id counter
    assert a.flush() == [ia] and b.count() == 1
    a.close()
    b.close()


def test_touch_of_a_deleted_entry_is_dropped(store: RedisStore) -> None:
    i = put(store, entry("k"))
    j = put(store, entry("j"))
    store.touch(i, 2000.0)
    store.touch(j, 2000.0)
    store.delete([i])
    store.flush_touches()
    assert store.get(i) is None and store.count() == 1
    got = store.get(j)
    assert got is not None and got.hits == 1


def test_entry_without_vector_is_announced_with_its_key_only(store: RedisStore) -> None:
    pos = store.stream_position()
    i = put(store, entry("k", vector=b""))
    assert store.get(i) is not None and list(store.iter_vectors()) == []
    _, events = store.events_since(pos, 0)
    assert [(e.op, e.ids, e.vector, e.key_hash) for e in events] == [
        ("add", (i,), b"", entry("k").key_hash)
    ]
    assert list(store.iter_key_hashes()) == [entry("k").key_hash]


# -- the change stream -------------------------------------------------------------------------


def test_events_announce_puts_and_deletes(redis_server: RedisServer, redis_prefix: str) -> None:
    a = open_store(redis_server, redis_prefix)
    b = open_store(redis_server, redis_prefix)
    assert isinstance(a, Subscribable) and a.replica_id != b.replica_id
    start = b.stream_position()
    assert start == "0-0"
    vec = np.arange(4, dtype=np.float32)
    i = put(a, entry("k", vector=vec.tobytes()))
    j = put(a, entry("j"))
    k = put(a, entry("k", vector=vec.tobytes()))  # replaces i: its delete is announced first
    assert a.delete([k, j, 999]) == 2
    pos, events = b.events_since(start, 100)
    assert [(e.op, e.ids) for e in events] == [
        ("add", (i,)),
        ("add", (j,)),
        ("delete", (i,)),
        ("add", (k,)),
        ("delete", (k, j)),
    ]
    assert {e.origin for e in events} == {a.replica_id}
    assert events[0].scope == "s1" and np.frombuffer(events[0].vector, np.float32).tolist() == [
        0,
        1,
        2,
        3,
    ]
    assert pos == events[-1].position == b.stream_position()
    t0 = time.monotonic()
    assert b.events_since(pos, 50) == (pos, [])  # blocks, then returns nothing new
    assert time.monotonic() - t0 >= 0.04
    a.close()
    b.close()


def test_blocked_read_wakes_on_a_put(redis_server: RedisServer, redis_prefix: str) -> None:
    a = open_store(redis_server, redis_prefix)
    b = open_store(redis_server, redis_prefix)
    pos = b.stream_position()

    async def main() -> tuple[float, list[Any]]:
        read = asyncio.create_task(asyncio.to_thread(b.events_since, pos, 2000))
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        await asyncio.to_thread(put, a, entry("k"))
        _, events = await read
        return time.monotonic() - t0, events

    waited, events = asyncio.run(main())
    assert len(events) == 1 and waited < 0.5
    a.close()
    b.close()


def test_trimmed_stream_reports_a_gap(redis_server: RedisServer, redis_prefix: str) -> None:
    a = open_store(redis_server, redis_prefix, stream_maxlen=1000)
    put(a, entry("first"))
    pos = a.stream_position()
    pipe = a._r.pipeline(transaction=False)  # 3000 more events, trimmed to ~1000
    for _ in range(3000):
        pipe.xadd(f"{redis_prefix}events", {"op": "delete", "ids": "0"}, maxlen=1000)
    pipe.execute()
    with pytest.raises(ChangeLogGap):
        a.events_since(pos, 0)
    a.close()


# -- start-up and outages ----------------------------------------------------------------------


def test_unreachable_redis_is_a_clear_start_error() -> None:
    from support.processes import free_port

    url = f"redis://user:s3cret@127.0.0.1:{free_port()}/0"
    with pytest.raises(ServiceUnavailable) as info:
        RedisStore.from_config(RedisConfig(url=url, timeout_seconds=0.5))
    assert "127.0.0.1" in info.value.message and "s3cret" not in info.value.message
    assert redact_url(url).startswith("redis://user:***@127.0.0.1:")


def test_config_selects_redis_with_env_url(redis_server: RedisServer, tmp_path: Path) -> None:
    cfg = from_dict(
        {"cache": {"store": "redis", "redis": {"url": "${TEST_REDIS_URL}", "key_prefix": "c:"}}},
        env={"TEST_REDIS_URL": redis_server.url},
    )
    assert cfg.cache.redis.url == redis_server.url
    assert from_dict({}).cache.store == "sqlite"

    async def main() -> type:
        cache = SemanticCache(msgspec.structs.replace(cfg.cache, semantic=False), tmp_path)
        await cache.start()
        kind = type(cache.store_backend)
        await cache.aclose()
        return kind

    assert asyncio.run(main()) is RedisStore


def test_redis_outage_turns_lookups_into_misses(embedder: Embedder, tmp_path: Path) -> None:
    server = RedisServer().start()
    cfg = CacheConfig(
        store="redis",
        redis=RedisConfig(url=server.url, timeout_seconds=0.5),
        sweep_interval_seconds=0,
    )

    async def main() -> None:
        cache = SemanticCache(cfg, tmp_path, embedder=embedder)
        await cache.start()
        try:
            d = request("How do I reverse a list in Python?")
            other = request("What is the capital of Australia?")
            await cache.put(d, completion("reversed"), tenant="acme", model="gpt")
            await cache.wait_writes()
            assert await cache.lookup(d, threshold=0.9) is not None
            server.stop()
            t0 = time.monotonic()
            assert await cache.lookup(d, threshold=0.9) is None
            assert time.monotonic() - t0 < 2.0
            assert cache.stats()["errors"] == 1
            # Visible at once from memory; the write fails, and the entry leaves memory again.
            await cache.put(other, completion("again"), tenant="acme", model="gpt")
            await cache.wait_writes()
            assert cache.stats()["store_failures"] == 1 and cache.stats()["pending_writes"] == 0
            server.start()  # back, but empty (no persistence): the mirror must follow
            await wait_for(lambda: cache.stats()["replica_resyncs"] >= 1, 5.0)
            assert cache.stats()["vectors"] == 0
            await cache.put(d, completion("stored again"), tenant="acme", model="gpt")
            hit = await cache.lookup(d, threshold=0.9)
            assert hit is not None and hit.response()["choices"][0]["message"]["content"] == (
                "stored again"
            )
        finally:
            await cache.aclose()

    try:
        asyncio.run(main())
    finally:
        server.close()


# -- two replicas ------------------------------------------------------------------------------


async def wait_for(cond: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``cond()`` held (fails after ``timeout``)."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)
    return time.monotonic() - t0


def replicas(
    server: RedisServer,
    prefix: str,
    tmp_path: Path,
    embedder: Embedder,
    body: Callable[[SemanticCache, SemanticCache], Awaitable[T]],
) -> T:
    cfg = CacheConfig(
        store="redis",
        redis=RedisConfig(url=server.url, key_prefix=prefix),
        sweep_interval_seconds=0,
    )

    async def main() -> T:
        a = SemanticCache(cfg, tmp_path / "a", embedder=embedder)
        b = SemanticCache(cfg, tmp_path / "b", embedder=embedder)
        await a.start()
        await b.start()
        try:
            return await body(a, b)
        finally:
            await a.aclose()
            await b.aclose()

    return asyncio.run(main())


def test_replicas_share_entries_and_mirror_vectors(
    redis_server: RedisServer, redis_prefix: str, tmp_path: Path, embedder: Embedder
) -> None:
    asked = request("How do I reverse a list in Python?")
    para = request("What's the way to reverse a Python list?")

    async def body(a: SemanticCache, b: SemanticCache) -> None:
        stored = await a.put(asked, completion("use reversed()"), tenant="acme", model="gpt")
        entry_id = stored.id
        await a.wait_writes()
        # another replica learns of the entry from its change event (milliseconds, unless the
        # machine is loaded): its exact keys and its mirror of the vectors both follow it
        await wait_for(lambda: b.stats()["replica_events"] == 1, 5.0)
        exact = await b.lookup(asked, threshold=0.8)
        assert exact is not None and exact.kind == "exact" and exact.entry.id == entry_id
        await wait_for(lambda: b.stats()["vectors"] == 1, 5.0)
        hit = await b.lookup(para, threshold=0.8)
        assert hit is not None and hit.kind == "semantic" and hit.entry.id == entry_id
        assert b.stats()["replica_events"] == 1 and a.stats()["replica_events"] == 0
        assert await a.delete(entry_id)
        await wait_for(lambda: b.stats()["vectors"] == 0, 1.0)
        assert await b.lookup(para, threshold=0.8) is None
        assert await b.lookup(asked, threshold=0.8) is None

    replicas(redis_server, redis_prefix, tmp_path, embedder, body)


def test_a_new_replica_loads_what_others_stored(
    redis_server: RedisServer, redis_prefix: str, tmp_path: Path, embedder: Embedder
) -> None:
    cfg = CacheConfig(
        store="redis",
        redis=RedisConfig(url=redis_server.url, key_prefix=redis_prefix),
        sweep_interval_seconds=0,
    )
    texts = ["How do I reverse a list in Python?", "What is the capital of Australia?"]

    async def main() -> None:
        a = SemanticCache(cfg, tmp_path / "a", embedder=embedder)
        await a.start()
        for t in texts:
            await a.put(request(t), completion(t), tenant="acme", model="gpt")
        await a.wait_writes()
        b = SemanticCache(cfg, tmp_path / "b", embedder=embedder)
        await b.start()
        assert b.stats()["vectors"] == 2
        hit = await b.lookup(request("Which city is Australia's capital?"), threshold=0.75)
        assert hit is not None and hit.kind == "semantic"
        await a.flush(tenant="acme")
        await wait_for(lambda: b.stats()["vectors"] == 0, 1.0)
        await a.aclose()
        await b.aclose()

    asyncio.run(main())
