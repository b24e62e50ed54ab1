"""The shared store: cache entries in Redis, so many gateway replicas serve one cache.

Why Redis: replicas behind a load balancer must see each other's answers, and a restart of one of
them must lose nothing. Each replica keeps its own FAISS mirror of the vectors (searching in
process takes microseconds; a network round trip per search would not), and learns of every other
replica's puts and deletes from a Redis stream (``Subscribable``), so the mirrors stay in step.

Keys, all under ``key_prefix`` (``P``) so deployments can share a server::

    P next_id       INCRBY counter: blocks of entry ids (never reused)
    P e:<id>        hash: d (msgpack Entry without vector and hit fields), v (vector), hits,
                    last_hit, scope, tenant, model, namespace, key_hash, size
    P kh            hash: key_hash -> id (the exact layer)
    P ids           sorted set: id scored by id (ordered paging: rebuilds, recent, flush)
    P lru           sorted set: id scored by last_hit (eviction)
    P exp           sorted set: id scored by expires_at (only entries that expire)
    P bytes         payload bytes of all entries
    P events        stream: {op: add|delete, ids, scope, v, kh, origin}, trimmed to ~stream_maxlen

Every change that spans keys (put, delete, recording hits) is one Lua script, so it is atomic and
one round trip; the put and delete scripts also append the stream event, so no replica can see a
change without its event or the other way round. Entry keys are built inside the scripts, which
suits one Redis server (with replicas or Sentinel), not Redis Cluster. Needs Redis 6.2 or later.

Like ``SqliteStore``, hits are buffered in memory (``touch``) and written in batches by the next
write or the cache's sweeper. Every method blocks; the cache calls them from its store thread,
and ``events_since`` from a thread of its own (the client's connection pool is thread-safe).

A Redis that stops answering must not hold that one store thread: every command would wait out
the timeout, and lookups queued behind it much longer. So the store shares the breaker of the
rest of the fleet parts (``RedisHealth``): after a failure its methods raise at once (a lookup
is a miss, an answer is not stored) and one call a second probes; timeouts are not retried.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import msgspec
import redis

from sidecache.cache.entries import ChangeEvent, ChangeLogGap, Entry, HitBuffer, Store
from sidecache.cache.redis_bulk import BulkReader
from sidecache.fleet.connection import connect, redact_url
from sidecache.fleet.health import RedisHealth

if TYPE_CHECKING:
    from pathlib import Path

    from sidecache.config import CacheConfig, RedisConfig

__all__ = ["RedisStore", "open_redis", "redact_url"]

log = logging.getLogger(__name__)

_ENCODE = msgspec.msgpack.Encoder()
_DECODE = msgspec.msgpack.Decoder(Entry)
_ENTRY_FIELDS = ("d", "v", "hits", "last_hit")
_PAGE = 1000
_DELETE_CHUNK = 500
_TOUCH_CHUNK = 1000
_EVENT_BATCH = 1000

P = ParamSpec("P")
R = TypeVar("R")


def _guarded(
    method: Callable[Concatenate[RedisStore, P], R],
) -> Callable[Concatenate[RedisStore, P], R]:
    """Run a store method through the breaker: at once ``RedisDown`` while Redis is away."""

    @functools.wraps(method)
    def guarded(store: RedisStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return store.health.call_sync(lambda: method(store, *args, **kwargs))

    return guarded


# KEYS: kh ids lru exp bytes events
# ARGV: key_hash body vector scope tenant model namespace hits last_hit expires_at|'' size
#       maxlen origin prefix id
# Returns the id of an older entry with the same key_hash that this put replaced, or false.
_PUT = """
local id = ARGV[15]
local replaced = false
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and old ~= id then
  local ok = ARGV[14] .. 'e:' .. old
  local size = redis.call('HGET', ok, 'size')
  if redis.call('DEL', ok) == 1 then
    redis.call('ZREM', KEYS[2], old)
    redis.call('ZREM', KEYS[3], old)
    redis.call('ZREM', KEYS[4], old)
    if size then redis.call('DECRBY', KEYS[5], size) end
    redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[12], '*', 'op', 'delete', 'ids', old,
               'origin', ARGV[13])
    replaced = old
  end
end
local k = ARGV[14] .. 'e:' .. id
local prev = redis.call('HGET', k, 'size')
if prev then redis.call('DECRBY', KEYS[5], prev) end
redis.call('HSET', KEYS[1], ARGV[1], id)
redis.call('HSET', k, 'd', ARGV[2], 'v', ARGV[3], 'scope', ARGV[4], 'tenant', ARGV[5],
           'model', ARGV[6], 'namespace', ARGV[7], 'key_hash', ARGV[1], 'size', ARGV[11],
           'hits', ARGV[8], 'last_hit', ARGV[9])
redis.call('ZADD', KEYS[3], ARGV[9], id)
redis.call('ZADD', KEYS[2], id, id)
if ARGV[10] == '' then
  redis.call('ZREM', KEYS[4], id)
else
  redis.call('ZADD', KEYS[4], ARGV[10], id)
end
redis.call('INCRBY', KEYS[5], ARGV[11])
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[12], '*', 'op', 'add', 'ids', id,
           'scope', ARGV[4], 'v', ARGV[3], 'kh', ARGV[1], 'origin', ARGV[13])
return replaced
"""

# KEYS: kh ids lru exp bytes events;  ARGV: prefix maxlen origin id...
_DELETE = """
local gone = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local k = ARGV[1] .. 'e:' .. id
  local f = redis.call('HMGET', k, 'key_hash', 'size')
  if redis.call('DEL', k) == 1 then
    if f[1] and redis.call('HGET', KEYS[1], f[1]) == id then
      redis.call('HDEL', KEYS[1], f[1])
    end
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZREM', KEYS[4], id)
    if f[2] then redis.call('DECRBY', KEYS[5], f[2]) end
    gone[#gone + 1] = id
  end
end
if #gone > 0 then
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[2], '*', 'op', 'delete',
             'ids', table.concat(gone, ','), 'origin', ARGV[3])
end
return #gone
"""

# KEYS: lru;  ARGV: prefix (id hits last_hit)...   Hits on deleted entries are dropped.
_TOUCH = """
for i = 2, #ARGV, 3 do
  local id = ARGV[i]
  local k = ARGV[1] .. 'e:' .. id
  if redis.call('EXISTS', k) == 1 then
    redis.call('HINCRBY', k, 'hits', ARGV[i + 1])
    local cur = tonumber(redis.call('HGET', k, 'last_hit') or '0')
    if tonumber(ARGV[i + 2]) > cur then
      redis.call('HSET', k, 'last_hit', ARGV[i + 2])
      redis.call('ZADD', KEYS[1], 'XX', 'GT', ARGV[i + 2], id)
    end
  end
end
return 0
"""

# KEYS: kh;  ARGV: key_hash prefix.  The exact layer in one round trip.
_BY_KEY_HASH = """
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return false end
local f = redis.call('HMGET', ARGV[2] .. 'e:' .. id, 'd', 'v', 'hits', 'last_hit')
if not f[1] then return false end
return {id, f[1], f[2], f[3], f[4]}
"""


def _num(value: float) -> str:
    """A float as Redis and Lua read it back exactly (shortest round-trip repr)."""
    return repr(float(value))


def _position(value: str | bytes) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _entry(entry_id: int, fields: Sequence[bytes | None]) -> Entry | None:
    body, vector, hits, last_hit = fields
    if body is None:
        return None
    entry = _DECODE.decode(body)
    entry.id = entry_id
    entry.vector = vector or b""
    entry.hits = int(hits or 0)
    entry.last_hit = float(last_hit or 0.0)
    return entry


class RedisStore:
    """``Store`` (and ``Subscribable``) over one Redis server; see the module docstring."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        key_prefix: str = "sidecache:",
        stream_maxlen: int = 100_000,
        replica_id: str | None = None,
        url: str = "",
    ) -> None:
        """``client`` must return bytes (no ``decode_responses``) and speak RESP2."""
        # Typed loosely: redis-py's reply types are unions of every RESP shape.
        self._r: Any = client
        self.prefix = key_prefix
        self.stream_maxlen = stream_maxlen
        self.replica_id = replica_id or uuid.uuid4().hex
        self.url = redact_url(url)
        p = key_prefix
        self._k_next, self._k_kh, self._k_ids = f"{p}next_id", f"{p}kh", f"{p}ids"
        self._k_lru, self._k_exp, self._k_bytes = f"{p}lru", f"{p}exp", f"{p}bytes"
        self._k_events = f"{p}events"
        self._put = client.register_script(_PUT)
        self._delete = client.register_script(_DELETE)
        self._touch = client.register_script(_TOUCH)
        self._by_key_hash = client.register_script(_BY_KEY_HASH)
        self._bulk = BulkReader(client, key_prefix)
        self._hits = HitBuffer()
        self._write_lock = threading.Lock()
        self._closed = False
        self._max_block_ms = 1000
        self.health = RedisHealth(2.0, what=": cache lookups are misses, answers not stored")

    @classmethod
    def from_config(cls, cfg: RedisConfig) -> RedisStore:
        """Connect and check the server; an unreachable or too old Redis is a start-up error
        (``ServiceUnavailable`` naming the URL, password hidden)."""
        client = connect(cfg)
        store = cls(client, key_prefix=cfg.key_prefix, stream_maxlen=cfg.stream_maxlen, url=cfg.url)
        # XREAD must return before the socket timeout fires.
        store._max_block_ms = max(1, int(cfg.timeout_seconds * 1000 / 2))
        store.health.timeout = cfg.timeout_seconds
        return store

    def _ekey(self, entry_id: int | str) -> str:
        return f"{self.prefix}e:{entry_id}"

    # -- writes ------------------------------------------------------------------------------

    @_guarded
    def allocate_ids(self, n: int) -> int:
        """Reserve ``n`` ids with one ``INCRBY``, shared by every replica."""
        return int(self._r.incrby(self._k_next, n)) - n + 1

    @_guarded
    def put(self, entry: Entry) -> int | None:
        """Store and announce in one script; see ``Store.put``."""
        if entry.id <= 0:
            raise ValueError("Entry.id must come from allocate_ids")
        body = _ENCODE.encode(
            msgspec.structs.replace(entry, id=0, vector=b"", hits=0, last_hit=0.0)
        )
        expires = "" if entry.expires_at is None else _num(entry.expires_at)
        args: list[Any] = [
            entry.key_hash,
            body,
            entry.vector,
            entry.scope,
            entry.tenant,
            entry.model,
            entry.namespace,
            int(entry.hits),
            _num(entry.last_hit or entry.created),
            expires,
            len(body) + len(entry.vector),
            self.stream_maxlen,
            self.replica_id,
            self.prefix,
            entry.id,
        ]
        keys = [
            self._k_kh,
            self._k_ids,
            self._k_lru,
            self._k_exp,
            self._k_bytes,
            self._k_events,
        ]
        replaced = self._put(keys=keys, args=args)
        with contextlib.suppress(redis.RedisError):  # kept for the next write if refused
            self._write_touches()  # after: hits on this entry while it was written count
        if not replaced:
            return None
        self._hits.forget([int(replaced)])
        return int(replaced)

    def touch(self, entry_id: int, now: float) -> None:
        self._hits.add(entry_id, now)

    @_guarded
    def flush_touches(self) -> None:
        self._write_touches()

    def _write_touches(self) -> None:
        """Write buffered hits; if Redis refuses, they are put back (and counted again later)."""
        with self._write_lock:
            pending = self._hits.take()
            if not pending:
                return
            items = list(pending.items())
            done = 0
            try:
                for start in range(0, len(items), _TOUCH_CHUNK):
                    chunk = items[start : start + _TOUCH_CHUNK]
                    args: list[Any] = [self.prefix]
                    for entry_id, (n, t) in chunk:
                        args += [entry_id, n, _num(t)]
                    self._touch(keys=[self._k_lru], args=args)
                    done += len(chunk)
            except BaseException:
                for entry_id, (n, t) in items[done:]:
                    self._hits.add(entry_id, t, n)
                raise

    @_guarded
    def delete(self, ids: Iterable[int]) -> int:
        id_list = [int(i) for i in ids]
        if not id_list:
            return 0
        self._hits.forget(id_list)
        keys = [self._k_kh, self._k_ids, self._k_lru, self._k_exp, self._k_bytes, self._k_events]
        deleted = 0
        for start in range(0, len(id_list), _DELETE_CHUNK):
            chunk = id_list[start : start + _DELETE_CHUNK]
            args: list[Any] = [self.prefix, self.stream_maxlen, self.replica_id, *chunk]
            deleted += int(self._delete(keys=keys, args=args))
        return deleted

    @_guarded
    def flush(
        self, namespace: str | None = None, model: str | None = None, tenant: str | None = None
    ) -> list[int]:
        """Delete the entries matching every given filter (none given: all); return their ids."""
        wanted = {
            f: v.encode()
            for f, v in (("namespace", namespace), ("model", model), ("tenant", tenant))
            if v is not None
        }
        want = list(wanted.values())
        ids: list[int] = []
        for page in self._id_pages():
            if not wanted:
                ids += page
                continue
            for entry_id, values in zip(page, self._fields(page, list(wanted)), strict=True):
                if list(values) == want:
                    ids.append(entry_id)
        self.delete(ids)
        return ids

    # -- reads -------------------------------------------------------------------------------

    def _pending_hits(self, entry: Entry) -> Entry:
        return self._hits.apply(entry)

    def _fields(self, ids: Sequence[int], fields: Sequence[str]) -> list[list[bytes | None]]:
        """``HMGET`` of the same fields of many entries, in one pipelined round trip."""
        pipe = self._r.pipeline(transaction=False)
        for entry_id in ids:
            pipe.hmget(self._ekey(entry_id), list(fields))
        return list(pipe.execute())

    @_guarded
    def get(self, entry_id: int) -> Entry | None:
        got = _entry(int(entry_id), self._r.hmget(self._ekey(entry_id), list(_ENTRY_FIELDS)))
        return self._pending_hits(got) if got is not None else None

    @_guarded
    def get_many(self, ids: Iterable[int]) -> list[Entry]:
        """Entries for these ids, in the order asked; missing ids are left out."""
        id_list = [int(i) for i in ids]
        if not id_list:
            return []
        out = []
        for entry_id, fields in zip(id_list, self._fields(id_list, _ENTRY_FIELDS), strict=True):
            got = _entry(entry_id, fields)
            if got is not None:
                out.append(self._pending_hits(got))
        return out

    @_guarded
    def get_by_key_hash(self, key_hash: str) -> Entry | None:
        found = self._by_key_hash(keys=[self._k_kh], args=[key_hash, self.prefix])
        if not found:
            return None
        got = _entry(int(found[0]), found[1:])
        return self._pending_hits(got) if got is not None else None

    def _id_pages(self, size: int = _PAGE, *, newest_first: bool = False) -> Iterator[list[int]]:
        """All ids in pages, by id (keyset paging on the ``ids`` set: stable under writes)."""
        bound = "+inf" if newest_first else "-inf"
        while True:
            if newest_first:
                raw = self._r.zrevrangebyscore(self._k_ids, bound, "-inf", start=0, num=size)
            else:
                raw = self._r.zrangebyscore(self._k_ids, bound, "+inf", start=0, num=size)
            if not raw:
                return
            page = [int(x) for x in raw]
            yield page
            bound = f"({page[-1]}"

    def iter_all(self) -> Iterator[Entry]:
        for page in self._id_pages():
            yield from self.get_many(page)

    def iter_vectors(self) -> Iterator[tuple[int, str, bytes]]:
        for page in self._id_pages(5000):
            for entry_id, (scope, vec) in zip(
                page, self._fields(page, ("scope", "v")), strict=True
            ):
                if scope is not None and vec:
                    yield entry_id, scope.decode(), bytes(vec)

    def iter_ids(self) -> Iterator[tuple[int, str]]:
        """``(id, scope)`` of every entry, packed a page per round trip (``redis_bulk``)."""
        return self._bulk.ids()

    @_guarded
    def vectors(self, ids: Sequence[int]) -> list[tuple[int, str, bytes]]:
        return self._bulk.vectors(ids)

    def iter_key_hashes(self) -> Iterator[str]:
        return self._bulk.key_hashes()

    @_guarded
    def expired(self, now: float) -> list[int]:
        return [int(x) for x in self._r.zrangebyscore(self._k_exp, "-inf", _num(now))]

    @_guarded
    def lru_victims(self, max_entries: int) -> list[int]:
        """Least recently hit entries beyond ``max_entries`` (buffered hits count)."""
        self._write_touches()
        excess = int(self._r.zcard(self._k_ids)) - max_entries
        if excess <= 0:
            return []
        return [int(x) for x in self._r.zrange(self._k_lru, 0, excess - 1)]

    @_guarded
    def recent(
        self, limit: int, scope: str | None = None, tenant: str | None = None
    ) -> list[Entry]:
        """Newest entries first, optionally of one scope and/or tenant."""
        if limit <= 0:
            return []
        if scope is None and tenant is None:
            return self.get_many(int(x) for x in self._r.zrevrange(self._k_ids, 0, limit - 1))
        want_scope = scope.encode() if scope is not None else None
        want_tenant = tenant.encode() if tenant is not None else None
        chosen: list[int] = []
        for page in self._id_pages(max(limit, 200), newest_first=True):
            for entry_id, (s, t) in zip(page, self._fields(page, ("scope", "tenant")), strict=True):
                if s is None or want_scope not in (None, s) or want_tenant not in (None, t):
                    continue
                chosen.append(entry_id)
                if len(chosen) == limit:
                    return self.get_many(chosen)
        return self.get_many(chosen)

    @_guarded
    def count(self) -> int:
        return int(self._r.zcard(self._k_ids))

    @_guarded
    def size_bytes(self) -> int:
        """Payload bytes of all entries (answers and vectors; Redis's own overhead not counted)."""
        return int(self._r.get(self._k_bytes) or 0)

    # -- change stream (Subscribable) ------------------------------------------------------------

    @_guarded
    def stream_position(self) -> str:
        newest = self._r.xrevrange(self._k_events, "+", "-", count=1)
        return newest[0][0].decode() if newest else "0-0"

    @_guarded
    def events_since(self, position: str, block_ms: int) -> tuple[str, list[ChangeEvent]]:
        """Up to 1000 events after ``position``; raises ``ChangeLogGap`` if some were trimmed
        away unread (only possible when a full batch comes back: trimming keeps at least
        ``stream_maxlen`` >= 1000 of the newest events)."""
        block = min(block_ms, self._max_block_ms) if block_ms > 0 else None
        reply = self._r.xread({self._k_events: position}, count=_EVENT_BATCH, block=block)
        if not reply:
            return position, []
        items = reply[0][1]
        if len(items) >= _EVENT_BATCH:
            self._check_gap(position)
        events = []
        for raw_id, fields in items:
            op = fields.get(b"op", b"").decode()
            ids = tuple(int(x) for x in fields.get(b"ids", b"").split(b",") if x)
            if op not in ("add", "delete") or not ids:
                continue
            events.append(
                ChangeEvent(
                    position=raw_id.decode(),
                    op=op,
                    ids=ids,
                    scope=fields.get(b"scope", b"").decode(),
                    vector=fields.get(b"v", b""),
                    key_hash=fields.get(b"kh", b"").decode(),
                    origin=fields.get(b"origin", b"").decode(),
                )
            )
        return items[-1][0].decode(), events

    def _check_gap(self, position: str) -> None:
        """Conservative: once the event at ``position`` is gone, later ones may be too.
        (``max-deleted-entry-id`` would be exact, but Redis 7.0 does not move it on trims.)"""
        info = self._r.xinfo_stream(self._k_events)
        first = info.get("first-entry")
        if not first or _position(first[0]) <= _position(position):
            return
        if position != "0-0" or int(info.get("entries-added", 1)) > int(info["length"]):
            raise ChangeLogGap(f"change stream trimmed past position {position}")

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Write buffered hits (if Redis still answers) and close the connections."""
        if self._closed:
            return
        self._closed = True
        try:
            self._write_touches()
        except redis.RedisError as exc:
            log.warning("redis store: buffered hits not written at close: %s", exc)
        with contextlib.suppress(redis.RedisError):
            self._r.close()


def open_redis(cfg: CacheConfig, data_dir: Path) -> Store:
    """``cache.store = "redis"``: the server in ``[redis]`` (or ``[cache.redis]``)."""
    return RedisStore.from_config(cfg.redis)
