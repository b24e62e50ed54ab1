"""FAISS vector indexes, one per cache scope.

Why one index per scope: a semantic hit is only allowed between requests whose scope (tenant,
model, system prompt, earlier turns, parameters) is identical, so searching a single global index
and filtering would waste work and recall. Most scopes stay tiny; a few (a popular system prompt)
grow large.

So each ``ScopeIndex`` starts as an exact ``IndexFlatIP`` (inner product on unit vectors is the
cosine) and, once it holds more than ``hnsw_min_size`` entries, is rebuilt as an HNSW graph, which
answers in far less than linear time. HNSW cannot delete: removed ids become tombstones that
searches skip (a FAISS id selector), and the graph is rebuilt from the surviving vectors (read
back from the index itself, so no second copy is kept) when tombstones pile up.

Building a graph is slow (minutes for a million vectors), so a large scope's graph is saved
(``snapshots``) and adopted again at start (``ScopeIndex.adopt``). Entries the saved graph
lacks wait in a small flat *side* index, searched together with the graph, and are folded into
it in the background a few at a time (``absorb``), so a restart is ready in seconds.

Every method blocks; the caller runs them in a worker thread. A lock per scope makes concurrent
calls from several threads safe. OpenMP is limited to one thread in the searching thread: for one
query against a small index, waking a thread team costs more than the search.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from sidecache.cache.entries import ChangeEvent

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["IndexSet", "ScopeIndex"]

log = logging.getLogger("sidecache.cache")

_omp_state = threading.local()


def _faiss() -> Any:
    import faiss

    return faiss


def _single_threaded() -> Any:
    """Import faiss and pin OpenMP to one thread for this thread (the setting is per thread)."""
    faiss = _faiss()
    if not getattr(_omp_state, "pinned", False):
        faiss.omp_set_num_threads(1)
        _omp_state.pinned = True
    return faiss


def _cores() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


def _as_ids(ids: Iterable[int]) -> npt.NDArray[np.int64]:
    return np.fromiter((int(i) for i in ids), dtype=np.int64)


def _as_matrix(vecs: Any, dim: int) -> npt.NDArray[np.float32]:
    arr = np.ascontiguousarray(vecs, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.shape[1] != dim:
        raise ValueError(f"vectors have dimension {arr.shape[1]}, the index expects {dim}")
    return arr


_BUILD_CHUNK = 20_000
"""Vectors copied out under the lock at a time during a rebuild (30 MB at 384 dimensions)."""
HNSW_M = 16
EF_CONSTRUCTION = 80
EF_SEARCH = 128
"""Chosen by measurement (``benchmarks/scale.py --sweep``, ``--sweep-ef``) on vectors shaped
like sentence embeddings, queries at cosine 0.95 from an entry. At 100,000 vectors M=16 /
efConstruction 80 finds the exact best match for 1000 of 1000 queries from efSearch 32, builds
1.7 times faster than M=32 / 64 and keeps half the links (128 bytes a vector). At a million,
recall against exact search is 0.991 at efSearch 64 and 0.997 at 128 (0.995 for queries near
the 0.9 threshold) for 0.27 ms p50: 128 it is."""


class ScopeIndex:
    """Inner-product search over the unit vectors of one scope: flat while small, then HNSW."""

    def __init__(
        self,
        dim: int,
        hnsw_min_size: int = 10_000,
        *,
        hnsw_m: int = HNSW_M,
        ef_construction: int = EF_CONSTRUCTION,
        ef_search: int = EF_SEARCH,
        rebuild_min_tombstones: int = 256,
        rebuild_ratio: float = 0.2,
        auto_rebuild: bool = True,
    ) -> None:
        """``auto_rebuild``: rebuild inside ``add``/``remove`` when needed (simple, but the
        caller's thread waits for the build); False leaves it to the owner, who watches
        ``needs_rebuild`` and calls ``rebuild`` from a background thread."""
        self.dim = dim
        self.hnsw_min_size = hnsw_min_size
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.rebuild_min_tombstones = rebuild_min_tombstones
        self.rebuild_ratio = rebuild_ratio
        self.auto_rebuild = auto_rebuild
        self._building = False
        self._lock = threading.RLock()
        self._live: set[int] = set()
        self._tombstones: set[int] = set()
        self._params: Any = None  # cached HNSW search parameters that skip tombstones
        self._keep: tuple[Any, ...] = ()  # selectors referenced by _params (C++ pointers)
        self.rebuilds = 0
        self._hnsw = False
        self._index: Any = self._new_index(hnsw=False)
        self._side: Any = None  # flat IDMap2 of live ids not in the graph yet (after adopt)
        self._side_ids: set[int] = set()
        self.changes = 0
        """Adds and removes since the graph was last saved (``snapshots``)."""

    @classmethod
    def adopt(cls, index: Any, dim: int, hnsw_min_size: int, **kw: Any) -> ScopeIndex:
        """A scope index around a graph read back from a snapshot (an ``IndexIDMap2``)."""
        idx = cls(dim, hnsw_min_size, **kw)
        faiss = _faiss()
        inner = faiss.downcast_index(index.index)
        if not isinstance(inner, faiss.IndexHNSW) or index.d != dim:
            raise ValueError("a snapshot must hold an HNSW graph of the index's dimension")
        inner.hnsw.efSearch = idx.ef_search
        index.index = inner
        idx._index, idx._hnsw = index, True
        idx._live = set(faiss.vector_to_array(index.id_map).tolist())
        return idx

    def add_side(self, ids: list[int], vecs: Any) -> None:
        """Live entries the adopted graph lacks: searchable at once, absorbed later."""
        if not ids:
            return
        with self._lock:
            if self._side is None:
                self._side = self._new_index(hnsw=False)
            self._side.add_with_ids(_as_matrix(vecs, self.dim), _as_ids(ids))
            self._side_ids.update(ids)
            self._live.update(ids)

    @property
    def pending_absorb(self) -> int:
        return len(self._side_ids)

    def absorb(self, limit: int = 16) -> int:
        """Move up to ``limit`` side entries into the graph (a short hold of the lock each:
        searches wait for a few milliseconds at most). Returns how many moved."""
        _single_threaded()
        with self._lock:
            if not self._side_ids:
                return 0
            take = list(itertools.islice(self._side_ids, limit))
            vecs = self._side.reconstruct_batch(_as_ids(take))
            self._side.remove_ids(_as_ids(take))
            self._side_ids.difference_update(take)
            self._index.add_with_ids(vecs, _as_ids(take))
            if not self._side_ids:
                self._side = None
            return len(take)

    def write(self, path: str) -> bool:
        """Save the graph (HNSW only) to ``path``; side entries and tombstones are left to the
        reconciliation that follows a load. Holds the lock: for shutdown, or a fresh build."""
        with self._lock:
            if not self._hnsw:
                return False
            _faiss().write_index(self._index, path)
            self.changes = 0
            return True

    # -- building ----------------------------------------------------------------------------

    def _new_index(self, *, hnsw: bool) -> Any:
        faiss = _faiss()
        if hnsw:
            inner = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.ef_construction
            inner.hnsw.efSearch = self.ef_search
        else:
            inner = faiss.IndexFlatIP(self.dim)
        return faiss.IndexIDMap2(inner)  # the wrapper keeps a reference to ``inner``

    def _vectors(self, ids: list[int]) -> npt.NDArray[np.float32]:
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not self._side_ids:
            out: npt.NDArray[np.float32] = self._index.reconstruct_batch(_as_ids(ids))
            return out
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        side = [n for n, i in enumerate(ids) if i in self._side_ids]
        graph = [n for n, i in enumerate(ids) if i not in self._side_ids]
        for rows, index in ((side, self._side), (graph, self._index)):
            if rows:
                out[rows] = index.reconstruct_batch(_as_ids([ids[n] for n in rows]))
        return out

    @property
    def needs_rebuild(self) -> bool:
        """Flat and past ``hnsw_min_size``, or HNSW with too many tombstones."""
        with self._lock:
            if not self._hnsw:
                return len(self._live) > self.hnsw_min_size
            limit = max(self.rebuild_min_tombstones, int(self.rebuild_ratio * self.ntotal))
            return len(self._tombstones) > limit

    def rebuild(
        self,
        threads: int | None = None,
        on_built: Callable[[Any], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> bool:
        """Rebuild from the live vectors: HNSW past ``hnsw_min_size`` (flat again only below
        half of it), without tombstones. ``threads``: OpenMP threads for the build (None: all).
        ``on_built(graph)`` sees a new HNSW graph before it is shared (to save it unlocked);
        ``stop()`` true between two chunks abandons the build (shutdown).

        Searches and changes go on meanwhile: the vectors are copied out a chunk at a time
        under the lock (so a million-vector build never holds a second copy of them all) and
        added to the new index outside it; then what changed in between is applied and the
        indexes are swapped. Returns False if another rebuild of this scope is running, or if
        stopped.
        """
        with self._lock:
            if self._building:
                return False
            self._building = True
            ids = sorted(self._live)
            was_hnsw = self._hnsw
        try:
            use_hnsw = len(ids) > self.hnsw_min_size or (
                was_hnsw and len(ids) > self.hnsw_min_size // 2
            )
            index = self._new_index(hnsw=use_hnsw)
            faiss = _faiss()
            for start in range(0, len(ids), _BUILD_CHUNK):
                if stop is not None and stop():
                    return False
                with self._lock:
                    chunk = [i for i in ids[start : start + _BUILD_CHUNK] if i in self._live]
                    vecs = self._vectors(chunk)
                if not chunk:
                    continue
                faiss.omp_set_num_threads(threads or _cores())
                try:
                    index.add_with_ids(vecs, _as_ids(chunk))
                finally:
                    faiss.omp_set_num_threads(1)
                    _omp_state.pinned = True
            if on_built is not None and use_hnsw:
                on_built(index)
            with self._lock:
                built = set(faiss.vector_to_array(index.id_map).tolist())
                added = sorted(self._live - built)
                removed = built - self._live
                if added:
                    index.add_with_ids(self._vectors(added), _as_ids(added))
                tombstones: set[int] = set()
                if removed and use_hnsw:
                    tombstones = removed
                elif removed:
                    index.remove_ids(_as_ids(removed))
                self._index, self._hnsw, self._tombstones = index, use_hnsw, tombstones
                self._side, self._side_ids = None, set()
                self.changes = len(added) + len(removed)
                self._params, self._keep = None, ()
                self.rebuilds += 1
        finally:
            with self._lock:
                self._building = False
        return True

    # -- mutation ----------------------------------------------------------------------------

    def add(self, ids: Iterable[int], vecs: Any) -> int:
        """Add vectors under their entry ids; ids already present are skipped. Returns added."""
        _single_threaded()
        id_arr = _as_ids(ids)
        mat = _as_matrix(vecs, self.dim)
        if len(id_arr) != len(mat):
            raise ValueError(f"{len(id_arr)} ids for {len(mat)} vectors")
        with self._lock:
            keep = [i for i, v in enumerate(id_arr.tolist()) if v not in self._live]
            if not keep:
                return 0
            if len(keep) != len(id_arr):
                id_arr, mat = id_arr[keep], mat[keep]
            # An id still in the graph as a tombstone (entry ids are never reused, so this is
            # rare) comes back to life; its old vector may then answer too: search dedupes.
            self._tombstones.difference_update(id_arr.tolist())
            self._params, self._keep = None, ()
            self._index.add_with_ids(mat, id_arr)
            self._live.update(id_arr.tolist())
            self.changes += len(id_arr)
        if self.auto_rebuild and self.needs_rebuild:
            self.rebuild()
        return len(id_arr)

    def remove(self, ids: Iterable[int]) -> int:
        """Forget these ids (unknown ones are ignored). Returns how many were removed."""
        _single_threaded()
        with self._lock:
            gone = [i for i in (int(x) for x in ids) if i in self._live]
            if not gone:
                return 0
            self._live.difference_update(gone)
            self.changes += len(gone)
            side = self._side_ids.intersection(gone)
            if side:
                self._side.remove_ids(_as_ids(side))
                self._side_ids.difference_update(side)
            graph = [i for i in gone if i not in side]
            if graph and self._hnsw:
                self._tombstones.update(graph)
                self._params, self._keep = None, ()
            elif graph:
                self._index.remove_ids(_as_ids(graph))
        if self.auto_rebuild and self.needs_rebuild:
            self.rebuild()
        return len(gone)

    # -- queries -----------------------------------------------------------------------------

    def _search_params(self) -> Any:
        if not self._tombstones:
            return None
        if self._params is None:
            faiss = _faiss()
            batch = faiss.IDSelectorBatch(_as_ids(self._tombstones))
            skip = faiss.IDSelectorNot(batch)
            self._params = faiss.SearchParametersHNSW(sel=skip, efSearch=self.ef_search)
            self._keep = (batch, skip)
        return self._params

    def search(self, vec: Any, k: int = 4) -> list[tuple[int, float]]:
        """The ``k`` nearest live ids with their inner product (cosine), best first."""
        _single_threaded()
        q = _as_matrix(vec, self.dim)[:1]
        with self._lock:
            k = min(k, len(self._live))
            if k <= 0:
                return []
            params = self._search_params()
            if params is None:
                scores, labels = self._index.search(q, k)
            else:
                scores, labels = self._index.search(q, k, params=params)
            if self._side_ids:
                extra = self._side.search(q, min(k, len(self._side_ids)))
                scores = np.concatenate([scores, extra[0]], axis=1)
                labels = np.concatenate([labels, extra[1]], axis=1)
                order = np.argsort(-scores[0])
                scores, labels = scores[:, order], labels[:, order]
        out: list[tuple[int, float]] = []
        seen: set[int] = set()
        for label, score in zip(labels[0].tolist(), scores[0].tolist(), strict=True):
            if label >= 0 and label in self._live and label not in seen:
                seen.add(label)
                out.append((label, float(score)))
        return out

    # -- introspection -----------------------------------------------------------------------

    def ids(self) -> set[int]:
        """A copy of the live ids."""
        with self._lock:
            return set(self._live)

    @property
    def kind(self) -> str:
        return "hnsw" if self._hnsw else "flat"

    @property
    def ntotal(self) -> int:
        """Vectors physically in the index, tombstones included."""
        return int(self._index.ntotal)

    @property
    def tombstones(self) -> int:
        return len(self._tombstones)

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._live


class IndexSet:
    """All scopes' indexes, created on demand, plus which scope holds each entry id."""

    def __init__(self, dim: int, hnsw_min_size: int = 10_000, *, auto_rebuild: bool = True) -> None:
        """``auto_rebuild=False``: the owner polls ``pending_rebuilds`` and calls ``rebuild``
        from a background thread, so a flat-to-HNSW switch never stalls searches."""
        self.dim = dim
        self.hnsw_min_size = hnsw_min_size
        self.auto_rebuild = auto_rebuild
        self._scopes: dict[str, ScopeIndex] = {}
        self._where: dict[int, str] = {}
        self._dirty: set[str] = set()
        self._lock = threading.Lock()

    def get(self, scope: str) -> ScopeIndex | None:
        return self._scopes.get(scope)

    def _scope(self, scope: str) -> ScopeIndex:
        """Caller holds ``_lock``."""
        idx = self._scopes.get(scope)
        if idx is None:
            idx = self._scopes[scope] = ScopeIndex(
                self.dim, self.hnsw_min_size, auto_rebuild=self.auto_rebuild
            )
        return idx

    def scope(self, scope: str) -> ScopeIndex:
        """The index of a scope, created empty if needed."""
        with self._lock:
            return self._scope(scope)

    def add(self, scope: str, ids: Iterable[int], vecs: Any) -> int:
        """Add under the set lock, so an emptied scope is never dropped while it is filled."""
        id_list = [int(i) for i in ids]
        with self._lock:
            idx = self._scope(scope)
            added = idx.add(id_list, vecs)
            for i in id_list:
                self._where[i] = scope
            if idx.needs_rebuild:
                self._dirty.add(scope)
        return added

    def attach(self, scope: str, idx: ScopeIndex, ids: Iterable[int] | None = None) -> None:
        """Take ``idx`` as the scope's index (an adopted snapshot) and record where ``ids``
        (default: all of its ids) live."""
        with self._lock:
            self._scopes.setdefault(scope, idx)
            for i in idx.ids() if ids is None else ids:
                self._where[i] = scope

    def pending_absorbs(self) -> list[str]:
        """Scopes whose adopted graph still has side entries to absorb."""
        return [s for s, idx in list(self._scopes.items()) if idx.pending_absorb]

    def load(self, rows: Iterable[tuple[int, str, bytes]]) -> int:
        """Add every ``(id, scope, float32 vector bytes)`` row, scope by scope (flat: fast;
        large scopes are switched to HNSW by the owner's rebuilds). Rows of another dimension
        (stored by another model) are skipped. Returns how many vectors were added."""
        by_scope: dict[str, tuple[list[int], list[bytes]]] = {}
        skipped = 0
        width = self.dim * 4
        for entry_id, scope, vec in rows:
            if len(vec) != width:
                skipped += 1
                continue
            ids, vecs = by_scope.setdefault(scope, ([], []))
            ids.append(entry_id)
            vecs.append(vec)
        if skipped:
            log.warning("semantic cache: %d stored vectors have the wrong dimension", skipped)
        total = 0
        for scope, (ids, vecs) in by_scope.items():
            mat = np.frombuffer(b"".join(vecs), dtype=np.float32).reshape(len(ids), self.dim)
            total += self.add(scope, ids, mat)
        return total

    def apply(
        self, events: Iterable[ChangeEvent], own: str, replay_to: str | None
    ) -> tuple[int, str | None]:
        """Apply a shared store's change events (other replicas' adds and deletes; own events
        are skipped except up to ``replay_to``, after a reload). Applying an event twice is
        harmless: adds skip known ids, deletes ignore unknown ones. Returns how many were
        applied and the ``replay_to`` still pending."""
        width = self.dim * 4
        applied = 0
        for ev in events:
            if ev.origin != own or replay_to is not None:
                if ev.op == "delete":
                    self.remove(ev.ids)
                    applied += 1
                elif len(ev.vector) == width:
                    vec = np.frombuffer(ev.vector, dtype=np.float32).reshape(1, self.dim)
                    self.add(ev.scope, ev.ids, vec)
                    applied += 1
            if ev.position == replay_to:
                replay_to = None
        return applied, replay_to

    def pending_rebuilds(self) -> list[str]:
        """Scopes that came to need a rebuild since the last call (``ScopeIndex.needs_rebuild``);
        only changed scopes are checked, so this stays cheap with many scopes."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        return [s for s in dirty if (idx := self._scopes.get(s)) is not None and idx.needs_rebuild]

    def rebuild(
        self,
        scope: str,
        threads: int | None = None,
        on_built: Callable[[Any], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> bool:
        idx = self._scopes.get(scope)
        return idx.rebuild(threads, on_built, stop) if idx is not None else False

    def search(self, scope: str, vec: Any, k: int = 4) -> list[tuple[int, float]]:
        idx = self._scopes.get(scope)
        return idx.search(vec, k) if idx is not None else []

    def remove(self, ids: Iterable[int]) -> int:
        """Remove ids wherever they are; empty scopes are dropped to free memory."""
        by_scope: dict[str, list[int]] = {}
        with self._lock:
            for i in ids:
                scope = self._where.pop(int(i), None)
                if scope is not None:
                    by_scope.setdefault(scope, []).append(int(i))
        removed = 0
        for scope, scope_ids in by_scope.items():
            idx = self._scopes.get(scope)
            if idx is None:
                continue
            removed += idx.remove(scope_ids)
            if idx.needs_rebuild:
                with self._lock:
                    self._dirty.add(scope)
            if len(idx) == 0:
                with self._lock:
                    if len(idx) == 0 and self._scopes.get(scope) is idx:
                        del self._scopes[scope]
        return removed

    def drop(self, scope: str) -> None:
        """Forget a whole scope."""
        with self._lock:
            self._scopes.pop(scope, None)
            self._where = {i: s for i, s in self._where.items() if s != scope}

    def scope_of(self, entry_id: int) -> str | None:
        return self._where.get(entry_id)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._where

    def __len__(self) -> int:
        return len(self._where)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._scopes))

    @property
    def scopes(self) -> int:
        return len(self._scopes)

    def kinds(self) -> dict[str, int]:
        """How many scopes are flat and how many HNSW."""
        out = {"flat": 0, "hnsw": 0}
        for idx in list(self._scopes.values()):
            out[idx.kind] += 1
        return out
