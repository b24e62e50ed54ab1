"""Virtual keys in Redis (``governance.store = "redis"``), one truth for every replica.

Keys under the prefix ``P`` (``[redis] key_prefix``)::

    P gov:keys          hash: key id -> the KeyRecord (msgpack; never the secret)
    P gov:key_hash      hash: hex SHA-256 of a current secret -> key id
    P gov:retired       hash: hex SHA-256 of a rotated-out secret -> [key id, valid until]
    P gov:keys_gen      counter, bumped by every change (in the change's own transaction)
    P gov:keys_changed  pub/sub channel: a message after every change

Requests are authenticated from memory: each replica keeps the (small) tables as a mirror and
reloads them when the generation moves. A watcher thread learns of a change at once from the
channel, and also checks the generation every ``POLL_SECONDS`` in case a message was lost (a
reconnect), so a key created or revoked anywhere (the CLI, another replica's admin API) is
seen everywhere within well under a second. Writes are optimistic transactions (``WATCH`` the
generation), so two admins writing at once never lose a change.

While Redis does not answer, the mirror keeps serving the keys it holds for
``governance.keys_offline_seconds``; after that ``lookup`` raises ``ServiceUnavailable`` (a
revocation could not have reached this replica for that long).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
import redis

from sidecache.errors import BadRequest, NotFound, ServiceUnavailable
from sidecache.governance.keys import (
    KEY_PREFIX,
    KeyRecord,
    Period,
    hash_key,
    new_record,
    new_secret,
    with_grace,
)

__all__ = ["RedisKeyStore"]

log = logging.getLogger("sidecache.governance")

T = TypeVar("T")
POLL_SECONDS = 0.2
_RETRY_SECONDS = 0.5
_ENCODE = msgspec.msgpack.Encoder()
_RECORD = msgspec.msgpack.Decoder(KeyRecord)
_RETIRED = msgspec.msgpack.Decoder(tuple[str, float])


class _Table(msgspec.Struct, frozen=True):
    """One consistent copy of the keys, swapped in whole."""

    generation: int
    by_hash: dict[bytes, KeyRecord]
    retired: dict[bytes, tuple[str, float]]
    by_id: dict[str, KeyRecord]


def _decode(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class RedisKeyStore:
    """``Keys`` over one Redis server (see the module docstring)."""

    def __init__(
        self, client: redis.Redis, prefix: str = "sidecache:", *, offline_seconds: float = 300.0
    ) -> None:
        self._r: Any = client
        p = prefix
        self._k_keys, self._k_hash = f"{p}gov:keys", f"{p}gov:key_hash"
        self._k_retired, self._k_gen = f"{p}gov:retired", f"{p}gov:keys_gen"
        self.channel = f"{p}gov:keys_changed"
        self.offline_seconds = offline_seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._synced_at = time.monotonic()
        self._lost_at: float | None = None
        self.reloads = 0
        self._table = self._read()

    # -- the mirror ------------------------------------------------------------------------------

    def _read(self) -> _Table:
        """All three tables and the generation, read in one transaction."""
        pipe = self._r.pipeline(transaction=True)
        pipe.get(self._k_gen)
        pipe.hgetall(self._k_keys)
        pipe.hgetall(self._k_hash)
        pipe.hgetall(self._k_retired)
        gen, records, hashes, retired = pipe.execute()
        old = {bytes.fromhex(_decode(h)): _RETIRED.decode(v) for h, v in retired.items()}
        by_id = with_grace(
            {_decode(k): _RECORD.decode(v) for k, v in records.items()}, old.values()
        )
        by_hash = {
            bytes.fromhex(_decode(h)): by_id[_decode(i)]
            for h, i in hashes.items()
            if _decode(i) in by_id
        }
        return _Table(int(gen or 0), by_hash, old, by_id)

    def refresh(self, *, force: bool = False) -> bool:
        """Reload if the generation moved (or ``force``); True if it reloaded. Blocking.

        A generation that went backwards means Redis came back without its data (restarted
        with no persistence, or a failover to an empty server): that is treated like an outage,
        the keys known here keep working for ``offline_seconds``, then Redis's table is taken.
        """
        gen = int(self._r.get(self._k_gen) or 0)
        now = time.monotonic()
        if not force and gen < self._table.generation:
            if self._lost_at is None:
                self._lost_at = now
                log.error(
                    "keys: Redis lost the key table (generation %d, was %d): serving the keys"
                    " known here for %gs; run Redis with persistence (appendonly yes)",
                    gen,
                    self._table.generation,
                    self.offline_seconds,
                )
            if now - self._lost_at < self.offline_seconds:
                self._synced_at = now  # Redis answers: the bound here is the loss's own
                return False
        elif not force and gen == self._table.generation:
            self._synced_at = now
            return False
        table = self._read()
        with self._lock:
            self._table = table
            self._synced_at = now
            self._lost_at = None
        self.reloads += 1
        return True

    def start_watching(self) -> None:
        """Follow changes on a thread of its own until ``close`` (the gateway does this)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._watch, name="sidecache-keys-watch", daemon=True
            )
            self._thread.start()

    def _watch(self) -> None:
        pubsub: Any = None
        failing = False
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self._r.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self.channel)
                pubsub.get_message(timeout=POLL_SECONDS)
                while pubsub.get_message(timeout=0) is not None:
                    pass  # several changes at once: one reload
                self.refresh()
                if failing:
                    log.warning("keys: Redis answers again")
                    failing = False
            except redis.RedisError as exc:
                if not failing:
                    log.warning("keys: Redis not answering (%s); serving the keys known", exc)
                    failing = True
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()
                    pubsub = None
                self._stop.wait(_RETRY_SECONDS)

    @property
    def stale_seconds(self) -> float:
        """Seconds since the mirror was last confirmed current."""
        return time.monotonic() - self._synced_at

    # -- reads (from memory) -----------------------------------------------------------------------

    def lookup(self, raw: str) -> KeyRecord | None:
        if self._thread is not None and self.stale_seconds > self.offline_seconds:
            raise ServiceUnavailable(
                f"the key store (Redis) has not answered for {self.stale_seconds:.0f}s",
                retry_after=5.0,
            )
        table = self._table
        digest = hash_key(raw)
        record = table.by_hash.get(digest)
        if record is None:
            retired = table.retired.get(digest)
            if retired is not None and time.time() < retired[1]:
                record = table.by_id.get(retired[0])
        if record is None or record.revoked:
            return None
        return record

    def known(self, raw: str) -> bool:
        digest = hash_key(raw)
        return digest in self._table.by_hash or digest in self._table.retired

    def ever_created(self) -> bool:
        return bool(self._table.by_id)

    def get(self, key_id: str) -> KeyRecord | None:
        return self._table.by_id.get(key_id)

    def count_active(self) -> int:
        return sum(1 for r in self._table.by_id.values() if not r.revoked)

    # -- writes (blocking: call from a thread) -----------------------------------------------------

    def _write(self, change: Callable[[Any, _Table], T]) -> T:
        """Run ``change(pipeline, current table)`` as one transaction guarded by the generation
        (retried if another writer got in first), bump it, announce it, and reload."""
        with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self._k_gen)
                    table = self._read()
                    pipe.multi()
                    result = change(pipe, table)
                    pipe.incr(self._k_gen)
                    pipe.publish(self.channel, b"1")
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        self.refresh(force=True)
        return result

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
        raw, record = new_record(
            tenant, models, rpm, tpm, budget_usd, budget_period, regions=regions, plan=plan
        )

        def change(pipe: Any, table: _Table) -> KeyRecord:
            pipe.hset(self._k_keys, record.id, _ENCODE.encode(record))
            pipe.hset(self._k_hash, hash_key(raw).hex(), record.id)
            return record

        return raw, self._write(change)

    def revoke(self, key: str) -> KeyRecord:
        ident = key.strip()

        def change(pipe: Any, table: _Table) -> KeyRecord:
            by_key = table.by_hash.get(hash_key(ident))
            if by_key is not None:
                matches = [by_key]
            else:
                matches = [r for r in table.by_id.values() if r.id == ident] or [
                    r
                    for r in table.by_id.values()
                    if len(ident) > len(KEY_PREFIX) and r.prefix.startswith(ident)
                ]
            if not matches:
                raise NotFound("no key matches (give the full key, its id or its prefix)")
            if len(matches) > 1:
                raise BadRequest(f"prefix {ident!r} matches {len(matches)} keys; use the key id")
            record = matches[0]
            if record.revoked:
                return record
            now = time.time()
            revoked = msgspec.structs.replace(
                record, revoked=True, revoked_at=now, grace_until=None
            )
            pipe.hset(self._k_keys, record.id, _ENCODE.encode(revoked))
            return revoked

        return self._write(change)

    def rotate(self, key_id: str, grace_seconds: float) -> tuple[str, KeyRecord]:
        raw, prefix = new_secret()
        until = time.time() + max(0.0, grace_seconds)

        def change(pipe: Any, table: _Table) -> KeyRecord:
            record = table.by_id.get(key_id)
            if record is None:
                raise NotFound(f"no key with id {key_id!r}")
            if record.revoked:
                raise BadRequest("a revoked key cannot be rotated", code="key_revoked")
            current = [h for h, r in table.by_hash.items() if r.id == key_id]
            for digest, (owner, old_until) in table.retired.items():
                if owner == key_id and old_until > until:  # earlier secrets: no longer than it
                    pipe.hset(self._k_retired, digest.hex(), _ENCODE.encode((key_id, until)))
            for digest in current:
                pipe.hdel(self._k_hash, digest.hex())
                pipe.hset(self._k_retired, digest.hex(), _ENCODE.encode((key_id, until)))
            pipe.hset(self._k_hash, hash_key(raw).hex(), key_id)
            rotated = msgspec.structs.replace(record, prefix=prefix, grace_until=None)
            pipe.hset(self._k_keys, key_id, _ENCODE.encode(rotated))
            return rotated

        self._write(change)
        record = self.get(key_id)
        assert record is not None
        return raw, record

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def list(self, *, include_revoked: bool = True) -> list[KeyRecord]:
        """All keys, oldest first (last in the class: the name hides ``list`` below it)."""
        records = [r for r in self._table.by_id.values() if include_revoked or not r.revoked]
        return sorted(records, key=lambda r: (r.created, r.id))
