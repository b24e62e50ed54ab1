"""The semantic cache: the one object the gateway calls to look answers up and store them.

It wires the parts together: the ``Store`` (durable entries), one FAISS index per scope
(``IndexSet``), the embedder behind a ``MicroBatcher``, the in-memory ``Pending`` entries, and
for shared stores a ``ReplicaSync``. A lookup tries the exact layer first (the key hash: no
embedding at all), then, if the scope has any vectors, embeds the last user turn and searches the
scope; candidates at or above the threshold are offered best-first to the hit verifier, and of
those it accepts, near ties on cosine go to the closest wording (``sidecache.cache.ranking``).

``put`` makes an answer visible at once: the exact layer answers from memory and the vector is in
the FAISS index when ``put`` returns; only the durable write (SQLite or Redis) happens in the
background. The key's vector is started on a miss (``prepare``) so it is ready, or nearly, when
the upstream answer ends; a lookup that already embedded the key hands its vector on.

Blocking work never runs on the event loop: the store on one dedicated thread (in submission
order, so a delete never overtakes the write of what it deletes), FAISS on another, the model on
the batcher's. Expiry and LRU eviction happen in a background sweeper, never on the request path;
hits are recorded in memory and written by the sweeper.
"""

from __future__ import annotations

import asyncio
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
from sidecache.cache.entries import ChangeEvent, Entry, Store, Subscribable, open_store
from sidecache.cache.exact import ExactKeys
from sidecache.cache.index import IndexSet
from sidecache.cache.pending import IdBlocks, Pending
from sidecache.cache.policy import Decision
from sidecache.cache.ranking import NEAR_TIE, choose, surface_similarity
from sidecache.cache.rebuilds import Rebuilds
from sidecache.cache.replica import ReplicaSync
from sidecache.cache.snapshots import IndexSnapshots, load_indexes
from sidecache.cache.write_behind import WriteBehind
from sidecache.tasks import stop_task

if TYPE_CHECKING:
    import numpy.typing as npt

    from sidecache.config import CacheConfig

__all__ = ["Hit", "SemanticCache", "Verify"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Verify = Callable[[str, str, float, "npt.NDArray[np.float32]", "npt.NDArray[np.float32]"], bool]
"""``verify(new_text, stored_text, similarity, new_vec, stored_vec) -> accept``.

Must be quick: it runs on the event loop, after the FAISS match passed the threshold."""

_KEPT_VECTORS = 4096
SEARCH_K = 4
"""Candidates a semantic lookup takes from the index (the verifier may refuse the best)."""
_ERROR_LOG_INTERVAL = 10.0
_SIZE_EVERY = 1.0
"""Seconds between refreshes of the entry count and byte size after writes."""


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
        """``store`` and ``embedder`` default to the configured backends under ``data_dir``;
        passing them lets a caller share one loaded model or swap the backend."""
        self.cfg = cfg
        self.data_dir = Path(data_dir)
        self.clock = clock
        self._store: Store | None = store
        self._embedder = embedder
        self._batcher: MicroBatcher | None = None
        self._index: IndexSet | None = None
        self._store_exec = ThreadPoolExecutor(1, thread_name_prefix="sidecache-store")
        self._index_exec = ThreadPoolExecutor(1, thread_name_prefix="sidecache-index")
        self._rebuilds = Rebuilds(lambda: self._index)
        self._closing = False
        self._sweeper: asyncio.Task[None] | None = None
        self._replica: ReplicaSync | None = None
        self._pending = Pending()
        self._exact = ExactKeys()
        self._behind = WriteBehind(self._store_exec, lambda: self.store_backend, self._written)
        self._ids = IdBlocks(self._allocate_ids)
        self._vectors: OrderedDict[str, asyncio.Future[npt.NDArray[np.float32]]] = OrderedDict()
        self._counts: dict[str, int] = dict.fromkeys(
            (
                "lookups",
                "exact_hits",
                "semantic_lookups",
                "semantic_hits",
                "misses",
                "verifier_rejections",
                "stores",
                "store_failures",
                "expired",
                "evicted",
                "deleted",
                "errors",
            ),
            0,
        )
        self._entries = 0
        self._bytes = 0
        self._sizing = False
        self._sized_at = float("-inf")
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
        self._behind.drain()  # queued writes first: store jobs run in submission order
        return await asyncio.get_running_loop().run_in_executor(self._store_exec, fn, *args)

    async def _in_index(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._index_exec, fn, *args)

    async def _allocate_ids(self, n: int) -> int:
        return await self._in_store(self.store_backend.allocate_ids, n)

    @property
    def space(self) -> str:
        """The embedding model's identity ('' before start or without a semantic layer)."""
        if self._embedder is None:
            return ""
        return str(getattr(self._embedder, "space", self._embedder.name))

    async def start(self) -> None:
        """Open the store, load the model, load the indexes, start the batcher and sweeper."""
        if self.started:
            return
        if self._store is None:
            self._store = await self._in_store(open_store, self.cfg, self.data_dir)
        store = self._store
        if self.cfg.semantic and isinstance(store, Subscribable):
            self._replica = ReplicaSync(store, self)
        try:
            position = await self._replica.position() if self._replica else None
            exact = self._in_store(ExactKeys, store.iter_key_hashes())  # beside model, indexes
            self._exact, _ = await asyncio.gather(exact, self._start_semantic())
            await self._refresh_size()
        except BaseException:
            await self.aclose()
            raise
        if self.cfg.sweep_interval_seconds > 0:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="sidecache-sweeper")
        if self._replica is not None and position is not None and self._index is not None:
            self._replica.start(position)
        self.started = True

    async def _start_semantic(self) -> None:
        assert self._store is not None
        if not self.cfg.semantic:
            return
        if self._embedder is None:
            self._embedder = await asyncio.to_thread(
                load_embedder, self.cfg.embedder, self.data_dir
            )
        dim = self._embedder.dim
        self._index = IndexSet(dim, self.cfg.hnsw_min_size, auto_rebuild=False)
        snaps = IndexSnapshots(self.data_dir / "index", dim=dim, space=self.space)
        self._rebuilds.snapshots = snaps
        _, adopted = await self._in_index(load_indexes, self._index, self._store, snaps)
        n, scopes = len(self._index), self._index.scopes
        log.info("semantic cache: %d vectors (%d saved) in %d scopes", n, adopted, scopes)
        self._rebuilds.schedule()
        emb = self.cfg.embedder
        self._batcher = MicroBatcher(
            self._embedder, emb.max_batch, emb.max_wait_ms, workers=emb.workers
        )
        self._batcher.start()

    async def wait_rebuilds(self) -> None:
        """Wait for background index rebuilds (tests, benchmarks, shutdown)."""
        await self._rebuilds.wait()

    async def wait_writes(self) -> None:
        """Wait until every answer put so far is in the store, and its size counted (tests,
        benchmarks, shutdown)."""
        await self._behind.wait()
        if not self._closing and self._store is not None:
            await self._refresh_size()

    async def aclose(self) -> None:
        """Finish pending writes, stop the sweeper and batcher, write buffered hits, close."""
        self._closing = True
        self._rebuilds.closing = True
        await stop_task(self._sweeper)
        self._sweeper = None
        if self._replica is not None:
            await self._replica.aclose()
            self._replica = None
        await self.wait_writes()
        await self._ids.aclose()
        await self._rebuilds.aclose()
        if self._index is not None and self._rebuilds.snapshots is not None:
            await asyncio.to_thread(self._rebuilds.snapshots.save_changed, self._index)
        if self._batcher is not None:
            await self._batcher.aclose()
            self._batcher = None
        if self._store is not None:
            await self._in_store(self._store.close)
            self._store = None
        self._store_exec.shutdown(wait=True)
        self._index_exec.shutdown(wait=True)
        self.started = False

    # -- lookup ------------------------------------------------------------------------------

    def _keep_vector(self, key_hash: str, fut: asyncio.Future[npt.NDArray[np.float32]]) -> None:
        """Keep a key's vector (or its computation) for the ``put`` that may follow a miss."""
        self._vectors[key_hash] = fut
        self._vectors.move_to_end(key_hash)
        while len(self._vectors) > _KEPT_VECTORS:
            _, old = self._vectors.popitem(last=False)
            if not old.done():
                old.add_done_callback(_ignore_result)

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
            self._log_error("cache lookup failed; treated as a miss", exc)
            hit = None
        if hit is None:
            self._counts["misses"] += 1
        return hit

    def _log_error(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_error_log > _ERROR_LOG_INTERVAL:  # one traceback per interval
            self._last_error_log = now
            log.error(what, exc_info=exc)
        else:
            log.debug("%s: %r", what, exc)

    async def _lookup(
        self, decision: Decision, threshold: float, verify: Verify | None
    ) -> Hit | None:
        store = self.store_backend
        now = self.clock()
        entry = self._pending.by_hash(decision.key_hash)
        if entry is None and self._exact.may_hold(decision.key_hash):
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
            return None  # nothing to compare with: embed on the miss path instead
        self._counts["semantic_lookups"] += 1
        fut = asyncio.ensure_future(self._batcher.embed(decision.key_text))
        self._keep_vector(decision.key_hash, fut)
        vec = await fut
        found = await self._in_index(self._index.search, decision.scope, vec, SEARCH_K)
        found = [(i, s) for i, s in found if s >= threshold]
        if not found:
            return None
        by_id = {i: e for i, _ in found if (e := self._pending.by_id(i)) is not None}
        stored = [i for i, _ in found if i not in by_id]
        if stored:
            for e in await self._in_store(self.store_backend.get_many, stored):
                by_id[e.id] = e
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

    def prepare(self, decision: Decision) -> None:
        """A miss that may be stored: start embedding its key now, beside the upstream call,
        so ``put`` finds the vector ready (a lookup that embedded it already left it here)."""
        if (
            not decision.write
            or self._batcher is None
            or not decision.key_text.strip()
            or decision.key_hash in self._vectors
        ):
            return
        fut = asyncio.ensure_future(self._batcher.embed(decision.key_text))
        self._keep_vector(decision.key_hash, fut)

    async def _vector(self, decision: Decision) -> npt.NDArray[np.float32] | None:
        if self._batcher is None or not decision.key_text.strip():
            return None
        fut = self._vectors.pop(decision.key_hash, None)
        vec = await fut if fut is not None else await self._batcher.embed(decision.key_text)
        return np.ascontiguousarray(vec, dtype=np.float32).reshape(-1)

    async def put(
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
    ) -> Entry:
        """Make an answer visible to the next lookup, exact and semantic, and write it to the
        store in the background; returns the entry (with its id).

        ``ttl``: seconds to live; None takes ``cfg.ttl_seconds``; 0 or less never expires.
        """
        if not decision.write:
            raise ValueError(f"this request may not be stored ({decision.reason})")
        now = self.clock()
        ttl = self.cfg.ttl_seconds if ttl is None else ttl
        vec = await self._vector(decision)
        entry = Entry(
            id=await self._ids.take(),
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
        self._pending.add(entry)
        self._exact.add(entry.key_hash)
        if vec is not None and self._index is not None:
            await self._in_index(self._index.add, entry.scope, [entry.id], vec.reshape(1, -1))
            self._rebuilds.schedule()
        self._behind.queue(entry)
        self._counts["stores"] += 1
        return entry

    def _written(self, batch: list[Entry], results: list[int | BaseException | None]) -> None:
        """A batch of durable writes ended: the store answers for each entry now, or, for one
        that failed, the entry leaves memory and the index (the client has its answer; it is
        not cached)."""
        replaced: list[int] = []
        for entry, result in zip(batch, results, strict=True):
            self._pending.written(entry)
            if isinstance(result, BaseException):
                self._counts["store_failures"] += 1
                self._log_error("cache write failed, answer not cached", result)
                replaced.append(entry.id)
            elif result is not None:
                replaced.append(result)
            else:  # counted at once; the periodic refresh adds other replicas' entries
                self._entries += 1
                self._bytes += len(entry.response) + len(entry.vector)
        if replaced and self._index is not None and not self._closing:
            self._behind.track(self._in_index(self._index.remove, replaced))
        now = time.monotonic()
        if not self._closing and not self._sizing and now - self._sized_at > _SIZE_EVERY:
            self._sizing = True  # one size refresh behind the writes, at most once a second
            self._behind.track(self._refresh_size())

    async def _remove(self, ids: list[int]) -> int:
        if not ids:
            return 0
        self._pending.forget(ids)
        deleted = await self._in_store(self.store_backend.delete, ids)
        if self._index is not None:
            await self._in_index(self._index.remove, ids)
            self._rebuilds.schedule()
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
        self._pending.forget(self._pending.matching(namespace, model, tenant))
        ids = await self._in_store(
            functools.partial(self.store_backend.flush, namespace, model, tenant)
        )
        if self._index is not None and ids:
            await self._in_index(self._index.remove, ids)
            self._rebuilds.schedule()
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
        await self._refresh_size()
        # counted once the size reflects them: a reader never sees the count without the removal
        self._counts["expired"] += n_expired
        self._counts["evicted"] += n_evicted
        if self._exact.stale(self._entries):
            self._exact = await self._in_store(ExactKeys, store.iter_key_hashes())
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

        self._sizing = False
        self._sized_at = time.monotonic()
        try:
            self._entries, self._bytes = await self._in_store(measure)
        except Exception as exc:  # figures for stats only: keep the last ones
            log.debug("cache size not refreshed: %r", exc)

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
            "pending_writes": len(self._pending),
            "scopes": self._index.scopes if self._index is not None else 0,
            "vectors": len(self._index) if self._index is not None else 0,
            **self._counts,
        }
        out["hits"] = self._counts["exact_hits"] + self._counts["semantic_hits"]
        out["index_rebuilds"] = self._rebuilds.completed
        if self._replica is not None:
            out["replica_events"] = self._replica.events
            out["replica_resyncs"] = self._replica.resyncs
        if self._index is not None:
            out["index_kinds"] = self._index.kinds()
        if self._batcher is not None:
            out["batch_sizes"] = self._batcher.batch_sizes()
            out["embedder"] = self._batcher.stats()
        if self._embedder is not None:
            out["embedder_name"] = self._embedder.name
        return out

    # -- the mirror a ReplicaSync keeps in step (shared stores) -------------------------------

    async def reload(self) -> int:
        """Bring the indexes back in step with the store in place (on the build thread, so
        searches go on): what the store lacks goes, what the indexes lack comes, no rebuild."""
        if self._index is None:
            return 0
        await self._rebuilds.run(load_indexes, self._index, self.store_backend)
        loaded = len(self._index)
        self._rebuilds.schedule()
        self._exact = await self._in_store(ExactKeys, self.store_backend.iter_key_hashes())
        return loaded

    async def apply(
        self, events: list[ChangeEvent], own: str, replay_to: str | None
    ) -> tuple[int, str | None]:
        for ev in events:
            if ev.op == "add":
                self._exact.add(ev.key_hash)
        if self._index is None:
            return 0, None
        applied, replay_to = await self._in_index(self._index.apply, events, own, replay_to)
        self._rebuilds.schedule()
        return applied, replay_to


def _ignore_result(fut: asyncio.Future[Any]) -> None:
    """Read a dropped future's outcome so an error in it is not reported as never retrieved."""
    if not fut.cancelled():
        fut.exception()
