from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sidecache
from sidecache.errors import BadRequest, NotFound
from sidecache.governance.keys import KEY_PREFIX, KeyStore, hash_key


def test_create_returns_raw_key_once_and_lookup_finds_it(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    raw, rec = store.create("acme", models=["gpt-4o"], rpm=60, tpm=10_000, budget_usd=5.0)
    assert raw.startswith(KEY_PREFIX)
    assert len(raw) - len(KEY_PREFIX) >= 32
    assert raw.startswith(rec.prefix) and len(rec.prefix) < len(raw) // 2
    assert rec.tenant == "acme" and rec.models == ["gpt-4o"] and rec.rpm == 60
    assert rec.budget_period == "month"  # a budget without a period is monthly
    assert store.lookup(raw) == rec
    assert store.lookup(raw + "x") is None
    assert store.lookup("sk-sc-nope") is None
    assert rec.allows("gpt-4o") and not rec.allows("gpt-4.1")
    raw2, rec2 = store.create("globex")
    assert raw2 != raw and rec2.id != rec.id and rec2.allows("anything")
    store.close()


def test_raw_key_never_reaches_the_database_files(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    raws = [store.create(f"t{i}", budget_usd=1.0)[0] for i in range(5)]
    store.revoke(store.list()[0].id)
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    store.close()
    blob += b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for raw in raws:
        assert raw.encode() not in blob
        assert raw[len(KEY_PREFIX) :].encode() not in blob  # nor its random part
        assert hash_key(raw) in blob  # what is stored is the digest


def test_records_survive_a_restart(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    raw, rec = store.create("acme", models=None, tpm=500, budget_usd=2.5, budget_period="day")
    store.close()
    again = KeyStore(tmp_path)
    assert again.lookup(raw) == rec
    assert again.count_active() == 1
    again.close()


def test_revoke_by_id_and_by_prefix(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    raw1, rec1 = store.create("a")
    raw2, rec2 = store.create("b")
    assert store.count_active() == 2
    revoked = store.revoke(rec1.id)
    assert revoked.revoked and revoked.revoked_at is not None
    assert store.lookup(raw1) is None and store.lookup(raw2) == rec2
    assert store.revoke(rec2.prefix).id == rec2.id
    assert store.lookup(raw2) is None
    assert store.count_active() == 0
    assert [r.id for r in store.list()] == [rec1.id, rec2.id]
    assert store.list(include_revoked=False) == []
    assert store.get(rec1.id) is not None and store.get(rec1.id).revoked  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        store.revoke("key_doesnotexist")
    store.close()


def test_ambiguous_prefix_is_refused(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    for _ in range(40):
        store.create("t")
    with pytest.raises(NotFound):
        store.revoke(KEY_PREFIX)  # the bare prefix names no key
    by_first_char: dict[str, int] = {}
    for r in store.list():
        c = r.prefix[len(KEY_PREFIX)]
        by_first_char[c] = by_first_char.get(c, 0) + 1
    shared = next((c for c, n in by_first_char.items() if n > 1), None)
    if shared is not None:
        with pytest.raises(BadRequest, match="matches"):
            store.revoke(KEY_PREFIX + shared)
    assert store.count_active() == 40
    store.close()


def test_invalid_arguments(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    with pytest.raises(BadRequest):
        store.create("")
    with pytest.raises(BadRequest):
        store.create("t", rpm=0)
    with pytest.raises(BadRequest):
        store.create("t", budget_usd=-1)
    store.close()


def test_revocation_from_another_process_takes_effect_quickly(tmp_path: Path) -> None:
    gateway = KeyStore(tmp_path, refresh_interval=0.2)
    raw, rec = gateway.create("acme")
    assert gateway.lookup(raw) == rec
    src = str(Path(sidecache.__file__).resolve().parents[1])
    script = (
        "import sys; from sidecache.governance.keys import KeyStore;"
        "s = KeyStore(sys.argv[1]); s.revoke(sys.argv[2]); "
        "raw, _ = s.create('other'); print(raw); s.close()"
    )
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), rec.prefix],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    other_raw = out.stdout.strip()
    deadline = time.monotonic() + 1.0
    while gateway.lookup(raw) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gateway.lookup(raw) is None
    assert gateway.lookup(other_raw) is not None  # keys made elsewhere appear too
    gateway.close()


def test_lookup_is_fast(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    raw, _ = store.create("acme")
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        store.lookup(raw)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 50e-6, per_call
    store.close()


OLD_SCHEMA = """
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY, prefix TEXT NOT NULL, hash BLOB NOT NULL UNIQUE, tenant TEXT NOT NULL,
    models TEXT, rpm INTEGER, tpm INTEGER, budget_usd REAL, budget_period TEXT,
    created REAL NOT NULL, revoked REAL
);
CREATE TABLE key_generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT INTO key_generation (id, value) VALUES (1, 1);
"""


def test_a_state_db_from_before_regions_and_plans_keeps_working(tmp_path: Path) -> None:
    import sqlite3

    raw = KEY_PREFIX + "o" * 43
    conn = sqlite3.connect(tmp_path / "state.db")
    conn.executescript(OLD_SCHEMA)
    conn.execute(
        "INSERT INTO api_keys VALUES ('key_old', ?, ?, 'acme', NULL, 5, NULL, NULL, NULL, 1.0,"
        " NULL)",
        (raw[:12], hash_key(raw)),
    )
    conn.commit()
    conn.close()
    store = KeyStore(tmp_path)
    old = store.lookup(raw)
    assert old is not None and old.rpm == 5 and old.regions is None and old.plan is None
    new_raw, new = store.create("acme", regions=["eu", "ch"], plan="pro")
    store.close()
    again = KeyStore(tmp_path)  # the migration is idempotent, the new fields persist
    assert again.lookup(new_raw) == new and new.regions == ["eu", "ch"] and new.plan == "pro"
    assert again.lookup(raw) == old
    with pytest.raises(BadRequest):
        again.create("acme", regions=[])
    again.close()


def test_rotation_keeps_the_key_and_retires_the_old_secret_after_its_grace(
    tmp_path: Path,
) -> None:
    store = KeyStore(tmp_path)
    other = KeyStore(tmp_path)  # another process on the same file (the CLI, a second gateway)
    old, rec = store.create("acme", rpm=60, budget_usd=5.0)
    new, rotated = store.rotate(rec.id, grace_seconds=0.3)
    assert new != old and new.startswith(rotated.prefix) and rotated.prefix != rec.prefix
    assert rotated.id == rec.id and rotated.rpm == 60 and rotated.budget_usd == 5.0
    assert rotated.grace_until is not None and rotated.grace_until > time.time()
    for s in (store, other):
        assert s.lookup(new) == rotated
        looked = s.lookup(old)  # still good during the grace period
        assert looked is not None and looked.id == rec.id
    time.sleep(0.35)
    for s in (store, other):
        assert s.lookup(old) is None and s.known(old)  # known: 401, never anonymous
        assert s.lookup(new) is not None
    # a rotation with no grace cuts every older secret at once
    newer, _ = store.rotate(rec.id, grace_seconds=3600)
    newest, _ = store.rotate(rec.id, grace_seconds=0)
    assert store.lookup(newer) is None and store.lookup(new) is None
    assert store.lookup(newest) is not None
    store.revoke(rec.id)
    with pytest.raises(BadRequest):
        store.rotate(rec.id, 10)
    with pytest.raises(NotFound):
        store.rotate("key_nope", 10)
    store.close()
    other.close()
