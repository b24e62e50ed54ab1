"""The SQLite store: round trips, durability across reopen and kill -9, TTL and LRU victims."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from support.stores import put

from sidecache.cache.entries import Entry
from sidecache.cache.sqlite_store import SqliteStore


def entry(key: str, *, scope: str = "s1", created: float = 1000.0, **kw: object) -> Entry:
    fields: dict[str, object] = {
        "scope": scope,
        "tenant": "t1",
        "model": "gpt",
        "namespace": "",
        "key_text": key,
        "key_hash": f"h-{scope}-{key}",
        "vector": np.ones(4, dtype=np.float32).tobytes(),
        "response": b'{"id":"chatcmpl-1"}',
        "created": created,
    }
    fields.update(kw)
    return Entry(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "cache.db")
    yield s
    s.close()


def test_put_get_round_trip(store: SqliteStore) -> None:
    e = entry("hello", prompt_tokens=3, completion_tokens=5, cost_usd=0.25, expires_at=2000.0)
    i = put(store, e)
    got = store.get(i)
    assert got is not None
    assert got.id == i and got.key_text == "hello" and got.cost_usd == 0.25
    assert got.expires_at == 2000.0 and got.last_hit == 1000.0  # last_hit defaults to created
    assert np.array_equal(got.vector_array(), np.ones(4, dtype=np.float32))
    assert store.get_by_key_hash(e.key_hash) == got
    assert store.get_by_key_hash("nope") is None
    assert store.get(12345) is None
    assert store.count() == 1


def test_same_key_hash_replaces_the_older_entry(store: SqliteStore) -> None:
    first = put(store, entry("k", response=b'{"v":1}'))
    newer = entry("k", response=b'{"v":2}', created=1500.0)
    newer.id = store.allocate_ids(1)
    assert store.put(newer) == first  # the replaced id, for the caller's indexes
    assert store.count() == 1
    assert store.get(first) is None
    got = store.get_by_key_hash(newer.key_hash)
    assert got is not None and got.id == newer.id and got.response == b'{"v":2}'


def test_entries_survive_reopen(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "cache.db")
    ids = [put(s, entry(f"k{i}")) for i in range(5)]
    s.touch(ids[0], 1234.0)
    s.close()
    s2 = SqliteStore(tmp_path / "cache.db")
    assert s2.count() == 5
    assert [e.id for e in s2.iter_all()] == ids
    assert [(i, sc) for i, sc, _ in s2.iter_vectors()] == [(i, "s1") for i in ids]
    first = s2.get(ids[0])
    assert first is not None and first.hits == 1 and first.last_hit == 1234.0
    s2.close()


def test_put_survives_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    code = textwrap.dedent(
        f"""
        import os, signal
        from sidecache.cache.entries import Entry
        from sidecache.cache.sqlite_store import SqliteStore
        s = SqliteStore({str(db)!r})
        i = s.allocate_ids(1)
        s.put(Entry(id=i, scope="s", tenant="t", model="m", key_text="q", key_hash="h",
                    response=b"{{}}", created=1.0))
        print(i, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    entry_id = int(proc.stdout.strip())
    s = SqliteStore(db)
    got = s.get(entry_id)
    s.close()
    assert got is not None and got.key_hash == "h"


def test_touch_is_buffered_and_counts(store: SqliteStore) -> None:
    i = put(store, entry("k"))
    store.touch(i, 1100.0)
    store.touch(i, 1200.0)
    got = store.get(i)  # pending hits are visible before they are written
    assert got is not None and got.hits == 2 and got.last_hit == 1200.0
    store.flush_touches()
    got = store.get(i)
    assert got is not None and got.hits == 2 and got.last_hit == 1200.0


def test_expired(store: SqliteStore) -> None:
    a = put(store, entry("a", expires_at=1500.0))
    b = put(store, entry("b", expires_at=3000.0))
    put(store, entry("c"))  # never expires
    assert store.expired(1000.0) == []
    assert store.expired(1500.0) == [a]
    assert sorted(store.expired(5000.0)) == [a, b]


def test_lru_victims_are_least_recently_hit(store: SqliteStore) -> None:
    ids = [put(store, entry(f"k{i}", created=1000.0 + i)) for i in range(5)]
    store.touch(ids[0], 2000.0)  # the oldest entry was just hit: it stays
    assert store.lru_victims(5) == []
    assert store.lru_victims(3) == [ids[1], ids[2]]
    assert store.lru_victims(0) == [ids[1], ids[2], ids[3], ids[4], ids[0]]


def test_delete_and_flush_filters(store: SqliteStore) -> None:
    a = put(store, entry("a", namespace="ns1", model="m1", tenant="t1"))
    b = put(store, entry("b", namespace="ns1", model="m2", tenant="t1"))
    c = put(store, entry("c", namespace="ns2", model="m1", tenant="t2"))
    d = put(store, entry("d", namespace="ns2", model="m2", tenant="t2"))
    assert store.delete([d, 999]) == 1
    assert store.count() == 3
    assert store.flush(namespace="ns1", model="m1") == [a]
    assert store.flush(tenant="t2") == [c]
    assert store.flush() == [b]
    assert store.count() == 0


def test_recent_newest_first(store: SqliteStore) -> None:
    ids = [put(store, entry(f"k{i}", scope="x" if i % 2 else "y")) for i in range(6)]
    assert [e.id for e in store.recent(3)] == ids[::-1][:3]
    assert [e.id for e in store.recent(10, scope="x")] == [ids[5], ids[3], ids[1]]
    assert store.recent(10, tenant="other") == []


def test_size_bytes_grows(store: SqliteStore) -> None:
    before = store.size_bytes()
    for i in range(50):
        put(store, entry(f"k{i}", response=os.urandom(2000)))
    assert store.size_bytes() > before
