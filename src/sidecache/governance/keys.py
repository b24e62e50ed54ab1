"""Virtual API keys: who is calling, which models they may use, their limits and budget.

A raw key (``sk-sc-`` + 43 url-safe characters, 256 random bits) is shown once, at creation.
The database keeps only its SHA-256 digest and a short non-secret prefix for display.

Why a plain SHA-256 and not bcrypt/argon2: slow password hashes exist to make guessing
low-entropy human passwords expensive. These keys are 256-bit random strings, so guessing is
already infeasible, and a fast digest lets every request be authenticated with one hash and one
dict lookup instead of tens of milliseconds of deliberate work. There is no salt for the same
reason: precomputed tables cannot cover a 256-bit space.

Lookups are served from memory. Another process (the CLI) may create or revoke keys in the same
database; every such write also bumps a generation number in the same transaction, so checking
it (at most every ``refresh_interval`` seconds, a few microseconds each, and at once for a key
not known yet) and reloading the small table makes a revocation effective in a running gateway
within that interval and a new key usable at once.

Rotation gives a key a new secret and keeps everything else (id, tenant, limits, budget and the
spend counted under its id). The old secret's digest moves to ``retired_keys`` with a deadline,
so clients can switch over during a grace period; after it the old secret gets 401.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, TypeVar

import msgspec
import orjson

from sidecache.errors import BadRequest, NotFound
from sidecache.governance.state import open_state_db

KEY_PREFIX = "sk-sc-"
_DISPLAY_CHARS = 6  # random characters kept in the display prefix (~36 of 256 bits)

Period = Literal["day", "month"]
K = TypeVar("K")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id            TEXT PRIMARY KEY,
    prefix        TEXT NOT NULL,
    hash          BLOB NOT NULL UNIQUE,
    tenant        TEXT NOT NULL,
    models        TEXT,
    rpm           INTEGER,
    tpm           INTEGER,
    budget_usd    REAL,
    budget_period TEXT,
    created       REAL NOT NULL,
    revoked       REAL
);
CREATE TABLE IF NOT EXISTS key_generation (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO key_generation (id, value) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS retired_keys (
    hash   BLOB PRIMARY KEY,
    key_id TEXT NOT NULL,
    until  REAL NOT NULL
);
"""

_BUMP = "UPDATE key_generation SET value = value + 1 WHERE id = 1"

_COLUMNS = (
    "id, prefix, tenant, models, rpm, tpm, budget_usd, budget_period, created, revoked,"
    " regions, plan"
)

_REGION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
"""A region name, as targets declare it (``config.models.Label``)."""

_ADDED_COLUMNS = {"regions": "TEXT", "plan": "TEXT"}
"""Columns added after the first release: ``_migrate`` adds them to older ``state.db`` files."""


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the columns an older ``api_keys`` table lacks (their NULL means: not set)."""
    have = {str(row[1]) for row in conn.execute("PRAGMA table_info(api_keys)").fetchall()}
    for name, kind in _ADDED_COLUMNS.items():
        if name not in have:
            try:
                conn.execute(f"ALTER TABLE api_keys ADD COLUMN {name} {kind}")
            except sqlite3.OperationalError as exc:  # another process added it just now
                if "duplicate column" not in str(exc):
                    raise


class KeyRecord(msgspec.Struct, kw_only=True, frozen=True):
    """What the gateway knows about a key; never holds the key itself."""

    id: str
    prefix: str
    """The first characters of the raw key, e.g. ``sk-sc-Ab3dE9``: enough to recognise it."""
    tenant: str
    models: list[str] | None = None
    """Model aliases this key may call; ``None``: all of them."""
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    budget_period: Period | None = None
    created: float = 0.0
    """Unix time of creation."""
    revoked: bool = False
    revoked_at: float | None = None
    regions: list[str] | None = None
    """Only targets in these regions may serve this key; ``None``: any (or its tenant's)."""
    plan: str | None = None
    """The plan whose limits apply where this key sets none (``[plans.NAME]``)."""
    grace_until: float | None = None
    """After a rotation: until when the previous secret still works (Unix time)."""

    def allows(self, model: str) -> bool:
        """Whether this key may call the model alias ``model``."""
        return self.models is None or model in self.models


def hash_key(raw: str) -> bytes:
    """The stored digest of a raw key (see the module docstring for why SHA-256 suffices)."""
    return hashlib.sha256(raw.encode()).digest()


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def new_secret() -> tuple[str, str]:
    """A fresh raw key and its display prefix."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    return raw, raw[: len(KEY_PREFIX) + _DISPLAY_CHARS]


def with_grace(
    by_hash: dict[K, KeyRecord], retired: Iterable[tuple[str, float]]
) -> dict[K, KeyRecord]:
    """The records with their ``grace_until``: the latest deadline of their rotated-out
    secrets, if one is still ahead."""
    now = time.time()
    latest: dict[str, float] = {}
    for key_id, until in retired:
        if until > now and until > latest.get(key_id, 0.0):
            latest[key_id] = until
    if not latest:
        return by_hash
    return {
        h: msgspec.structs.replace(r, grace_until=latest[r.id]) if r.id in latest else r
        for h, r in by_hash.items()
    }


def _row_to_record(row: tuple[object, ...]) -> KeyRecord:
    (kid, prefix, tenant, models, rpm, tpm, budget, period, created, revoked, regions, plan) = row
    return KeyRecord(
        id=str(kid),
        prefix=str(prefix),
        tenant=str(tenant),
        models=orjson.loads(models) if isinstance(models, str) else None,
        rpm=rpm if isinstance(rpm, int) else None,
        tpm=tpm if isinstance(tpm, int) else None,
        budget_usd=float(budget) if isinstance(budget, int | float) else None,
        budget_period="day" if period == "day" else "month" if period == "month" else None,
        created=float(created) if isinstance(created, int | float) else 0.0,
        revoked=revoked is not None,
        revoked_at=float(revoked) if isinstance(revoked, int | float) else None,
        regions=orjson.loads(regions) if isinstance(regions, str) else None,
        plan=str(plan) if isinstance(plan, str) and plan else None,
    )


def new_record(
    tenant: str,
    models: list[str] | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    budget_usd: float | None = None,
    budget_period: Period | None = None,
    *,
    regions: list[str] | None = None,
    plan: str | None = None,
) -> tuple[str, KeyRecord]:
    """A new secret and the record a store keeps for it, after checking the options; both
    stores (SQLite and Redis) make keys here so they accept and refuse the same things."""
    if not tenant:
        raise BadRequest("a key needs a tenant name", param="tenant")
    for name, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and value < 1:
            raise BadRequest(f"{name} must be at least 1", param=name)
    if budget_usd is not None and budget_usd < 0:
        raise BadRequest("budget_usd must not be negative", param="budget_usd")
    if budget_usd is not None and budget_period is None:
        budget_period = "month"
    if regions is not None and not regions:
        raise BadRequest("a region-pinned key needs at least one region", param="regions")
    for region in regions or ():
        if not _REGION.match(region):
            raise BadRequest(
                f"region {region!r}: use letters, digits and _.:- (up to 64)", param="regions"
            )
    raw, prefix = new_secret()
    record = KeyRecord(
        id=new_key_id(),
        prefix=prefix,
        tenant=tenant,
        models=list(models) if models is not None else None,
        rpm=rpm,
        tpm=tpm,
        budget_usd=budget_usd,
        budget_period=budget_period,
        created=time.time(),
        regions=list(regions) if regions is not None else None,
        plan=plan or None,
    )
    return raw, record


class KeyStore:
    """Keys in ``<data_dir>/state.db``, mirrored in memory for per-request lookups.

    Thread-safe; every method is short and synchronous (the table is small and read from memory),
    so it may be called from the event loop.
    """

    def __init__(self, data_dir: str | Path, *, refresh_interval: float = 0.5) -> None:
        self._conn: sqlite3.Connection = open_state_db(data_dir)
        self._conn.executescript(_SCHEMA)
        _migrate(self._conn)
        self._lock = threading.Lock()
        self._refresh_interval = refresh_interval
        self._by_hash: dict[bytes, KeyRecord] = {}
        self._retired: dict[bytes, tuple[str, float]] = {}
        """Digests of rotated-out secrets: ``(key id, valid until)``."""
        self._seen_generation = -1
        self._checked_at = 0.0
        with self._lock:
            self._reload()

    # -- in-memory mirror -------------------------------------------------------------------

    def _reload(self) -> None:
        """Re-read the whole table (caller holds the lock)."""
        self._seen_generation = self._generation()
        rows = self._conn.execute(f"SELECT hash, {_COLUMNS} FROM api_keys").fetchall()
        retired = self._conn.execute("SELECT hash, key_id, until FROM retired_keys").fetchall()
        self._retired = {bytes(h): (str(k), float(u)) for h, k, u in retired}
        self._by_hash = with_grace(
            {bytes(r[0]): _row_to_record(r[1:]) for r in rows}, self._retired.values()
        )
        self._checked_at = time.monotonic()

    def _generation(self) -> int:
        # fetchall: a statement left half-read would hold its read transaction (and snapshot)
        rows = self._conn.execute("SELECT value FROM key_generation WHERE id = 1").fetchall()
        return int(rows[0][0]) if rows else 0

    def _maybe_refresh(self, *, now_or_never: bool = False) -> None:
        """Reload if another process committed since we last looked (a rate-limited check;
        ``now_or_never`` skips the rate limit: an unknown key may have just been created)."""
        now = time.monotonic()
        if now - self._checked_at < self._refresh_interval and not now_or_never:
            return
        with self._lock:
            self._checked_at = now
            if self._generation() != self._seen_generation:
                self._reload()

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        """One change to the keys, with the generation bump that tells running gateways
        (caller holds the lock)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute(sql, params)
            self._conn.execute(_BUMP)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._seen_generation = self._generation()

    # -- public API -------------------------------------------------------------------------

    def create(
        self,
        tenant: str,
        models: list[str] | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: float | None = None,
        budget_period: Period | None = None,
        regions: list[str] | None = None,
        plan: str | None = None,
    ) -> tuple[str, KeyRecord]:
        """Make a key; returns the raw key (shown once, never stored) and its record."""
        raw, record = new_record(
            tenant, models, rpm, tpm, budget_usd, budget_period, regions=regions, plan=plan
        )
        digest = hash_key(raw)
        with self._lock:
            self._write(
                f"INSERT INTO api_keys (hash, {_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    digest,
                    record.id,
                    record.prefix,
                    record.tenant,
                    orjson.dumps(record.models).decode() if record.models is not None else None,
                    record.rpm,
                    record.tpm,
                    record.budget_usd,
                    record.budget_period,
                    record.created,
                    None,
                    orjson.dumps(record.regions).decode() if record.regions is not None else None,
                    record.plan,
                ),
            )
            self._by_hash[digest] = record
        return raw, record

    def lookup(self, raw: str) -> KeyRecord | None:
        """The active record for a raw key, or ``None`` if unknown or revoked."""
        self._maybe_refresh()
        digest = hash_key(raw)
        record = self._by_hash.get(digest)
        if record is None and digest not in self._retired:
            # created a moment ago by the CLI? one quick look at the database
            self._maybe_refresh(now_or_never=True)
            record = self._by_hash.get(digest)
        if record is None:
            record = self._retired_record(digest)
        if record is None or record.revoked:
            return None
        return record

    def _retired_record(self, digest: bytes) -> KeyRecord | None:
        """The record a rotated-out secret still opens during its grace period."""
        retired = self._retired.get(digest)
        if retired is None or time.time() >= retired[1]:
            return None
        return self.get(retired[0])

    def known(self, raw: str) -> bool:
        """Whether this raw key was ever issued here (revoked or not)."""
        self._maybe_refresh()
        digest = hash_key(raw)
        return digest in self._by_hash or digest in self._retired

    def get(self, key_id: str) -> KeyRecord | None:
        """The record with this id, revoked or not."""
        self._maybe_refresh()
        for record in self._by_hash.values():
            if record.id == key_id:
                return record
        return None

    def list(self, *, include_revoked: bool = True) -> list[KeyRecord]:
        """All keys, oldest first."""
        self._maybe_refresh()
        records = [r for r in self._by_hash.values() if include_revoked or not r.revoked]
        return sorted(records, key=lambda r: (r.created, r.id))

    def revoke(self, key: str) -> KeyRecord:
        """Revoke a key given as what a user holds: the full key, its id or its displayed
        prefix; returns its (revoked) record.

        Raises ``NotFound`` if nothing matches and ``BadRequest`` if a prefix is ambiguous.
        """
        ident = key.strip()
        with self._lock:
            self._reload()
            by_key = self._by_hash.get(hash_key(ident))
            if by_key is not None:
                matches = [(hash_key(ident), by_key)]
            else:
                matches = [
                    (h, r)
                    for h, r in self._by_hash.items()
                    if r.id == ident
                    or (len(ident) > len(KEY_PREFIX) and r.prefix.startswith(ident))
                ]
                exact = [(h, r) for h, r in matches if r.id == ident]
                if exact:
                    matches = exact
            if not matches:
                raise NotFound("no key matches (give the full key, its id or its prefix)")
            if len(matches) > 1:
                raise BadRequest(f"prefix {ident!r} matches {len(matches)} keys; use the key id")
            digest, record = matches[0]
            if record.revoked:
                return record
            now = time.time()
            self._write("UPDATE api_keys SET revoked = ? WHERE id = ?", (now, record.id))
            revoked = msgspec.structs.replace(record, revoked=True, revoked_at=now)
            self._by_hash[digest] = revoked
            return revoked

    def rotate(self, key_id: str, grace_seconds: float) -> tuple[str, KeyRecord]:
        """A new secret for the key ``key_id`` (returned once, never stored); the current one
        keeps working for ``grace_seconds``, and secrets retired earlier no longer than that.

        Raises ``NotFound`` for an unknown id and ``BadRequest`` for a revoked key.
        """
        with self._lock:
            self._reload()
            found = [(h, r) for h, r in self._by_hash.items() if r.id == key_id]
            if not found:
                raise NotFound(f"no key with id {key_id!r}")
            digest, record = found[0]
            if record.revoked:
                raise BadRequest("a revoked key cannot be rotated", code="key_revoked")
            raw, prefix = new_secret()
            until = time.time() + max(0.0, grace_seconds)
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "UPDATE retired_keys SET until = min(until, ?) WHERE key_id = ?",
                    (until, key_id),
                )
                self._conn.execute(
                    "INSERT OR REPLACE INTO retired_keys (hash, key_id, until) VALUES (?, ?, ?)",
                    (digest, key_id, until),
                )
                self._conn.execute(
                    "UPDATE api_keys SET hash = ?, prefix = ? WHERE id = ?",
                    (hash_key(raw), prefix, key_id),
                )
                self._conn.execute(_BUMP)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._reload()
            return raw, self._by_hash[hash_key(raw)]

    def count_active(self) -> int:
        """How many keys are not revoked."""
        self._maybe_refresh()
        return sum(1 for r in self._by_hash.values() if not r.revoked)

    def ever_created(self) -> bool:
        """Whether any key exists, revoked ones included. Only a store that never held a key
        lets a gateway run open: revoking the last key must not open the door again. While it
        looks open, every call checks the database, so a key created a moment ago closes it
        for the very next request."""
        self._maybe_refresh(now_or_never=not self._by_hash)
        return bool(self._by_hash)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()
