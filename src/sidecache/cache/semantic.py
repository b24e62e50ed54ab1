"""The semantic cache: the one object the gateway calls to look answers up and store them.

It wires the parts together: the ``Store`` (durable entries), one FAISS index per scope
(``IndexSet``), the embedder behind a ``MicroBatcher``. A lookup tries the exact layer first (the
key hash: no embedding at all), then, if the scope has any vectors, embeds the last user turn and
searches the scope; candidates at or above the threshold are offered best-first to the hit
verifier, and of those it accepts, near ties on cosine go to the closest wording
(``sidecache.cache.ranking``). A scope with no vectors yet (every first turn of a new
conversation) costs no embedding on the lookup path; the vector is computed when the answer is
stored.

Blocking work never runs on the event loop: SQLite on one dedicated thread, FAISS on another,
the model on the batcher's. Expiry and LRU eviction happen in a background sweeper, never on the
request path; hits are recorded in memory and written by the sweeper.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import msgspec
import numpy as np
import orjson

from sidecache.cache.batcher import MicroBatcher
from sidecache.cache.embedder import Embedder, load_embedder
from sidecache.cache.index import IndexSet
from sidecache.cache.policy import Decision
from sidecache.cache.ranking import NEAR_TIE, choose, surface_similarity
from sidecache.cache.store import (
    ChangeEvent,
    ChangeLogGap,
    Entry,
    Store,
    Subscribable,
    open_store,
)

if TYPE_CHECKING:
    import numpy.typing as npt

    from sidecache.config import CacheConfig

__all__ = ["Hit", "SemanticCache", "Verify"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Verify = Callable[[str, str, float, "npt.NDArray[np.float32]", "npt.NDArray[np.float32]"], bool]
"""``verify(new_text, stored_text, similarity, new_vec, stored_vec) -> accept``.

Must be quick: it runs on the event loop, after the FAISS match passed the threshold."""

_PENDING_VECTORS = 4096
SEARCH_K = 4
"""Candidates a semantic lookup takes from the index (the verifier may refuse the best)."""
_ERROR_LOG_INTERVAL = 10.0
_FOLLOW_BLOCK_MS = 500
_FOLLOW_RETRY_SECONDS = 1.0


class Hit(msgspec.Struct, frozen=True):
    """A cached answer for a request, and how it was found."""

    entry: Entry
    kind: Literal["exact", "semantic"]
    similarity: float

    def response(self) -> dict[str, Any]:
        """The stored chat.completion object."""
        out: dict[str, Any] = orjson.loads(self.entry.response)
        return out


class SemanticCache:
    """Exact + semantic response cache over a ``Store``, FAISS and a local embedder."""

    def __init__(
        self,
        cfg: CacheConfig,
        data_dir: str | Path,
        *,
        store: Store | None = None,
        embedder: Embedder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``store`` and ``embedder`` default to SQLite under ``data_dir`` and the configured
        backend; passing them lets a caller share one loaded model or swap the backend."""
        self.cfg = cfg
        self.data_dir = Path(data_dir)
        self.clock = clock
        self._store: Store | None = store
        self._embedder = embedder
        self._batcher: MicroBatcher | None = None
        self._index: IndexSet | None = None
        self._store_exec = ThreadPoolExecutor(1, thread_name_prefix="sidecache-store")
        self._index_exec = ThreadPoolExecutor(1, thread_name_prefix="sidecache-index")
        self._build_exec = ThreadPoolExecutor(1, thread_name_prefix="sidecache-index-build")
        self._building: dict[str, asyncio.Future[bool]] = {}
        self._closing = False
        self._sweeper: asyncio.Task[None] | None = None
        self._follower: asyncio.Task[None] | None = None  # replica sync, shared stores only
        self._events_exec = ThreadPoolExecutor(1, thread_name_prefix="sidecache-events")
        self._pending: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._counts: dict[str, int] = dict.fromkeys(
            (
                "lookups",
                "exact_hits",
                "semantic_lookups",
                "semantic_hits",
                "misses",
                "verifier_rejections",
                "stores",
                "expired",
                "evicted",
                "deleted",
                "errors",
                "index_rebuilds",
            ),
            0,
        )
        self._counts.update(replica_events=0, replica_resyncs=0)
        self._entries = 0
        self._bytes = 0
        self._last_error_log = float("-inf")
        self.started = False

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def store_backend(self) -> Store:
        if self._store is None:
            raise RuntimeError("SemanticCache.start() has not been called")
        return self._store

    @property
    def embedder(self) -> Embedder | None:
        return self._embedder

    async def _in_store(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._store_exec, fn, *args)

    async def _in_index(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._index_exec, fn, *args)

    @property
    def space(self) -> str:
        """The embedding model's identity ('' before start or without a semantic layer)."""
        if self._embedder is None:
            return ""
        return str(getattr(self._embedder, "space", self._embedder.name))

    async def start(self) -> None:
        """Open the store, load the model, rebuild the indexes, start the batcher and sweeper."""
        if self.started:
            return
        if self._store is None:
            self._store = await self._in_store(open_store, self.cfg, self.data_dir)
        try:
            position = await self._sync_position()  # before the indexes load: no gap
            await self._start_semantic()
            await self._refresh_size()
        except BaseException:
            await self.aclose()
            raise
        if self.cfg.sweep_interval_seconds > 0:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="sidecache-sweeper")
        self._start_follower(position)
        self.started = True

    async def _start_semantic(self) -> None:
        assert self._store is not None
        if self.cfg.semantic:
            if self._embedder is None:
                self._embedder = await asyncio.to_thread(
                    load_embedder, self.cfg.embedder, self.data_dir
                )
            self._index = IndexSet(self._embedder.dim, self.cfg.hnsw_min_size, auto_rebuild=False)
            loaded = await self._in_index(self._load_indexes, self._index, self._store)
            log.info("semantic cache: %d vectors in %d scopes", loaded, self._index.scopes)
            self._schedule_rebuilds()
            emb = self.cfg.embedder
            self._batcher = MicroBatcher(
                self._embedder, emb.max_batch, emb.max_wait_ms, workers=emb.workers
            )
            self._batcher.start()

    @staticmethod
    def _load_indexes(index: IndexSet, store: Store) -> int:
        """Load every stored vector into its scope's index (blocking; runs on the index thread).

        Scopes are loaded flat, which is fast; large ones are then switched to HNSW in the
        background, so a restart with many entries is ready in seconds.
        """
        by_scope: dict[str, tuple[list[int], list[bytes]]] = {}
        skipped = 0
        width = index.dim * 4
        for entry_id, scope, vec in store.iter_vectors():
            if len(vec) != width:  # stored by a model of another dimension
                skipped += 1
                continue
            ids, vecs = by_scope.setdefault(scope, ([], []))
            ids.append(entry_id)
            vecs.append(vec)
        if skipped:
            log.warning("semantic cache: %d stored vectors have the wrong dimension", skipped)
        total = 0
        for scope, (ids, vecs) in by_scope.items():
            mat = np.frombuffer(b"".join(vecs), dtype=np.float32).reshape(len(ids), index.dim)
            total += index.add(scope, ids, mat)
        return total

    def _schedule_rebuilds(self) -> None:
        """Start background rebuilds (flat to HNSW, tombstone cleanup) for scopes that need one.

        They run on their own thread with one OpenMP thread, so searches in every scope go on
        and serving keeps the other cores.
        """
        if self._index is None:
            return
        for scope in self._index.pending_rebuilds():
            self._start_rebuild(scope)

    def _start_rebuild(self, scope: str) -> None:
        if self._index is None or self._closing or scope in self._building:
            return  # a running build is checked again when it ends (``_rebuilt``)
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._build_exec, self._index.rebuild, scope, 1)
        self._building[scope] = fut
        fut.add_done_callback(functools.partial(self._rebuilt, scope))

    def _rebuilt(self, scope: str, fut: asyncio.Future[bool]) -> None:
        self._building.pop(scope, None)
        if fut.cancelled():
            return
        if (exc := fut.exception()) is not None:
            log.error("index rebuild of a scope failed: %r", exc)
            return
        self._counts["index_rebuilds"] += 1
        idx = self._index.get(scope) if self._index is not None else None
        if idx is not None and idx.needs_rebuild and not self._closing:
            self._start_rebuild(scope)  # changes made during the build call for another

    async def wait_rebuilds(self) -> None:
        """Wait for background index rebuilds (tests, benchmarks, shutdown)."""
        while self._building:
            await asyncio.gather(*list(self._building.values()), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop the sweeper and batcher, write buffered hits, close the store."""
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self._stop_follower()
        await self.wait_rebuilds()
        if self._batcher is not None:
            await self._batcher.aclose()
            self._batcher = None
        if self._store is not None:
            await self._in_store(self._store.close)
            self._store = None
        self._store_exec.shutdown(wait=True)
        self._index_exec.shutdown(wait=True)
        self._build_exec.shutdown(wait=True)
        self._events_exec.shutdown(wait=True)
        self.started = False

    # -- lookup ------------------------------------------------------------------------------

    def _remember(self, key_hash: str, vec: npt.NDArray[np.float32]) -> None:
        """Keep a looked-up vector so the ``store`` after a miss does not embed it again."""
        self._pending[key_hash] = vec
        self._pending.move_to_end(key_hash)
        while len(self._pending) > _PENDING_VECTORS:
            self._pending.popitem(last=False)

    async def lookup(
        self, decision: Decision, *, threshold: float, verify: Verify | None = None
    ) -> Hit | None:
        """The cached answer for this request, or None. Exact layer first, then semantic.

        A broken cache must not fail the request: errors are logged and count as a miss.
        """
        if not decision.read:
            return None
        self._counts["lookups"] += 1
        try:
            hit = await self._lookup(decision, threshold, verify)
        except Exception as exc:
            self._counts["errors"] += 1
            now = time.monotonic()
            if now - self._last_error_log > _ERROR_LOG_INTERVAL:  # one traceback per interval
                self._last_error_log = now
                log.exception("cache lookup failed; treated as a miss")
            else:
                log.debug("cache lookup failed; treated as a miss: %r", exc)
            hit = None
        if hit is None:
            self._counts["misses"] += 1
        return hit

    async def _lookup(
        self, decision: Decision, threshold: float, verify: Verify | None
    ) -> Hit | None:
        store = self.store_backend
        now = self.clock()
        entry = await self._in_store(store.get_by_key_hash, decision.key_hash)
        if entry is not None and not entry.expired(now):
            store.touch(entry.id, now)
            self._counts["exact_hits"] += 1
            return Hit(entry, "exact", 1.0)
        return await self._semantic_lookup(decision, threshold, verify, now)

    async def _semantic_lookup(
        self, decision: Decision, threshold: float, verify: Verify | None, now: float
    ) -> Hit | None:
        if self._index is None or self._batcher is None or not decision.key_text.strip():
            return None
        scope_index = self._index.get(decision.scope)
        if scope_index is None or len(scope_index) == 0:
            return None  # nothing to compare with: embed later, when storing
        self._counts["semantic_lookups"] += 1
        vec = await self._batcher.embed(decision.key_text)
        self._remember(decision.key_hash, vec)
        found = await self._in_index(self._index.search, decision.scope, vec, SEARCH_K)
        found = [(i, s) for i, s in found if s >= threshold]
        if not found:
            return None
        entries = await self._in_store(self.store_backend.get_many, [i for i, _ in found])
        by_id = {e.id: e for e in entries}
        accepted: list[tuple[Entry, float]] = []
        for entry_id, score in found:
            similarity = min(score, 1.0)
            if accepted and similarity < accepted[0][1] - NEAR_TIE:
                break  # out of the running: no need to verify it
            entry = by_id.get(entry_id)
            if entry is None or entry.expired(now):
                continue
            if verify is not None and not verify(
                decision.key_text, entry.key_text, similarity, vec, entry.vector_array()
            ):
                self._counts["verifier_rejections"] += 1
                continue
            accepted.append((entry, similarity))
        if not accepted:
            return None
        entry, similarity = accepted[
            choose(
                [s for _, s in accepted],
                lambda i: surface_similarity(decision.key_text, accepted[i][0].key_text),
            )
        ]
        self.store_backend.touch(entry.id, now)
        self._counts["semantic_hits"] += 1
        return Hit(entry, "semantic", similarity)

    # -- writes ------------------------------------------------------------------------------

    async def store(
        self,
        decision: Decision,
        response: dict[str, Any],
        *,
        ttl: float | None = None,
        tenant: str,
        model: str,
        namespace: str | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost_usd: float = 0.0,
        vector: npt.NDArray[np.float32] | None = None,
    ) -> int:
        """Store an answer and index its key; returns the entry id.

        ``ttl``: seconds to live; None takes ``cfg.ttl_seconds``; 0 or less never expires.
        ``vector``: the key's embedding if the caller has it (else the one kept from the
        lookup, else it is computed here).
        """
        if not decision.write:
            raise ValueError(f"this request may not be stored ({decision.reason})")
        store = self.store_backend
        now = self.clock()
        ttl = self.cfg.ttl_seconds if ttl is None else ttl
        vec = vector if vector is not None else self._pending.pop(decision.key_hash, None)
        if vec is None and self._batcher is not None and decision.key_text.strip():
            vec = await self._batcher.embed(decision.key_text)
        if vec is not None:
            vec = np.ascontiguousarray(vec, dtype=np.float32).reshape(-1)
        entry = Entry(
            scope=decision.scope,
            tenant=tenant,
            model=model,
            namespace=namespace or "",
            key_text=decision.key_text,
            key_hash=decision.key_hash,
            vector=vec.tobytes() if vec is not None else b"",
            response=orjson.dumps(response),
            created=now,
            expires_at=now + ttl if ttl > 0 else None,
            last_hit=now,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost_usd,
        )
        entry_id = await self._in_store(store.put, entry)
        if vec is not None and self._index is not None:
            await self._in_index(self._index.add, decision.scope, [entry_id], vec.reshape(1, -1))
            self._schedule_rebuilds()
        self._counts["stores"] += 1
        await self._refresh_size()
        return entry_id

    async def _remove(self, ids: list[int]) -> int:
        if not ids:
            return 0
        deleted = await self._in_store(self.store_backend.delete, ids)
        if self._index is not None:
            await self._in_index(self._index.remove, ids)
            self._schedule_rebuilds()
        return deleted

    async def delete(self, entry_id: int) -> bool:
        """Delete one entry (admin); True if it existed."""
        deleted = await self._remove([entry_id])
        self._counts["deleted"] += deleted
        await self._refresh_size()
        return deleted > 0

    async def flush(
        self, namespace: str | None = None, model: str | None = None, tenant: str | None = None
    ) -> int:
        """Delete every entry matching all given filters (none: everything); returns how many."""
        ids = await self._in_store(
            functools.partial(self.store_backend.flush, namespace, model, tenant)
        )
        if self._index is not None and ids:
            await self._in_index(self._index.remove, ids)
            self._schedule_rebuilds()
        self._counts["deleted"] += len(ids)
        await self._refresh_size()
        return len(ids)

    # -- maintenance -------------------------------------------------------------------------

    async def sweep(self) -> dict[str, int]:
        """Drop expired entries, evict least recently hit ones past ``max_entries``, write
        buffered hits. The background sweeper calls this; tests may too."""
        store = self.store_backend
        expired = await self._in_store(store.expired, self.clock())
        n_expired = await self._remove(expired)
        victims = await self._in_store(store.lru_victims, self.cfg.max_entries)
        n_evicted = await self._remove(victims)
        await self._in_store(store.flush_touches)
        self._counts["expired"] += n_expired
        self._counts["evicted"] += n_evicted
        await self._refresh_size()
        return {"expired": n_expired, "evicted": n_evicted}

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.sweep_interval_seconds)
            try:
                await self.sweep()
            except Exception:
                log.exception("cache sweep failed")

    async def _refresh_size(self) -> None:
        store = self.store_backend

        def measure() -> tuple[int, int]:
            return store.count(), store.size_bytes()

        self._entries, self._bytes = await self._in_store(measure)

    # -- reporting ---------------------------------------------------------------------------

    async def recent(
        self, limit: int = 50, scope: str | None = None, tenant: str | None = None
    ) -> list[Entry]:
        """Newest entries first (for the admin view)."""
        return await self._in_store(
            functools.partial(self.store_backend.recent, limit, scope, tenant)
        )

    def stats(self) -> dict[str, Any]:
        """Counters and sizes, from memory only (safe to call on the event loop)."""
        out: dict[str, Any] = {
            "entries": self._entries,
            "bytes": self._bytes,
            "scopes": self._index.scopes if self._index is not None else 0,
            "vectors": len(self._index) if self._index is not None else 0,
            **self._counts,
        }
        out["hits"] = self._counts["exact_hits"] + self._counts["semantic_hits"]
        if self._index is not None:
            out["index_kinds"] = self._index.kinds()
        if self._batcher is not None:
            out["batch_sizes"] = self._batcher.batch_sizes()
            out["embedder"] = self._batcher.stats()
        if self._embedder is not None:
            out["embedder_name"] = self._embedder.name
        return out

    # -- replica sync (shared stores) ----------------------------------------------------------
    #
    # With a store that several gateway replicas share (``Subscribable``), every replica keeps
    # its own FAISS mirror. A follower task reads the store's change log on its own thread and
    # applies the other replicas' adds and deletes to the local indexes; this replica's own
    # changes are already there. If the log cannot be read (Redis away) or lost events, the
    # indexes are reloaded from the store once it answers again.

    def _subscribable(self) -> Subscribable | None:
        store = self._store
        return store if self.cfg.semantic and isinstance(store, Subscribable) else None

    async def _in_events(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._events_exec, fn, *args)

    async def _sync_position(self) -> str | None:
        """The change-log position to follow from, taken *before* the indexes are loaded."""
        store = self._subscribable()
        return None if store is None else await self._in_events(store.stream_position)

    def _start_follower(self, position: str | None) -> None:
        store = self._subscribable()
        if store is None or position is None or self._index is None:
            return
        self._follower = asyncio.create_task(
            self._follow(store, position), name="sidecache-replica-sync"
        )

    async def _stop_follower(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
            self._follower = None

    async def _follow(self, store: Subscribable, position: str) -> None:
        """Apply other replicas' changes as they happen (runs until cancelled)."""
        replay_to: str | None = None
        resync = False
        while True:
            try:
                if resync:
                    position, replay_to = await self._resync()
                    resync = False
                position, events = await self._in_events(
                    store.events_since, position, _FOLLOW_BLOCK_MS
                )
            except ChangeLogGap as exc:
                log.warning("replica sync: %s; reloading the indexes", exc)
                resync = True
                continue
            except Exception as exc:
                if not resync:
                    log.warning("replica sync paused (%s); retrying", exc)
                resync = True
                await asyncio.sleep(_FOLLOW_RETRY_SECONDS)
                continue
            if events:
                applied, replay_to = await self._in_index(
                    self._apply_events, events, store.replica_id, replay_to
                )
                self._counts["replica_events"] += applied
                self._schedule_rebuilds()

    async def _resync(self) -> tuple[str, str | None]:
        """Reload the indexes from the store and swap them in; returns the position to follow
        from and, if this replica wrote meanwhile, the position up to which its own events must
        be applied too (its writes during the load may have missed the new indexes)."""
        store = self._subscribable()
        if store is None or self._index is None:
            raise RuntimeError("no shared store to resync from")
        position = await self._in_events(store.stream_position)
        fresh = IndexSet(self._index.dim, self.cfg.hnsw_min_size, auto_rebuild=False)
        loaded = await self._in_events(self._load_indexes, fresh, self.store_backend)
        self._index = fresh
        after = await self._in_events(store.stream_position)
        self._counts["replica_resyncs"] += 1
        log.info("replica sync: indexes reloaded from the store (%d vectors)", loaded)
        self._schedule_rebuilds()
        return position, (after if after != position else None)

    def _apply_events(
        self, events: list[ChangeEvent], own: str, replay_to: str | None
    ) -> tuple[int, str | None]:
        """Apply events to the indexes (blocking; index thread). Own events are skipped, except
        up to ``replay_to`` after a reload. Returns how many were applied and the ``replay_to``
        still pending. Applying an event twice is harmless: adds skip known ids."""
        index = self._index
        if index is None:
            return 0, None
        width = index.dim * 4
        applied = 0
        for ev in events:
            if ev.origin != own or replay_to is not None:
                if ev.op == "delete":
                    index.remove(ev.ids)
                    applied += 1
                elif len(ev.vector) == width:
                    vec = np.frombuffer(ev.vector, dtype=np.float32).reshape(1, width // 4)
                    index.add(ev.scope, ev.ids, vec)
                    applied += 1
            if ev.position == replay_to:
                replay_to = None
        return applied, replay_to
