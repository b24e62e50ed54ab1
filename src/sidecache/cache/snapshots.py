"""Index snapshots, and loading the indexes at start from them and the store.

A scope's HNSW graph takes minutes to build at a million entries, and every replica used to
build it again at every start. So large scopes' graphs are saved under ``<data_dir>/index/``:
when a background rebuild makes a new graph (written before it is shared, so no lock is held)
and at a graceful shutdown if it changed since. Each file is a FAISS index with its entry ids,
next to a small manifest (the scope, the embedding space and dimension) so a graph made by
another model is never adopted.

``load_indexes`` is the one way indexes are filled: it lists ``(id, scope)`` from the store
(an index scan, no vectors), adopts the saved graph of a scope when there is one, reconciles it
with the store (ids the graph lacks go to its side index, ids the store no longer has become
tombstones) and fetches vectors only for what is not in a graph. The same reconciliation brings
a replica's live indexes back in step after it lost the change stream, without a rebuild.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from sidecache.cache.entries import Store
from sidecache.cache.index import IndexSet, ScopeIndex

__all__ = ["IndexSnapshots", "load_indexes"]

log = logging.getLogger("sidecache.cache")

FORMAT = 1
_FETCH = 5000


class Manifest(msgspec.Struct, frozen=True):
    scope: str
    space: str
    dim: int
    count: int
    written: float
    format: int = FORMAT


class IndexSnapshots:
    """Saved graphs of one cache, one file (and manifest) per large scope."""

    def __init__(self, directory: Path, *, dim: int, space: str, min_changes: int = 1000) -> None:
        self.directory = directory
        self.dim = dim
        self.space = space
        self.min_changes = min_changes
        self.saved_count = 0

    def _paths(self, scope: str) -> tuple[Path, Path]:
        name = hashlib.sha256(scope.encode()).hexdigest()[:32]
        return self.directory / f"{name}.faiss", self.directory / f"{name}.json"

    def _manifests(self) -> Iterator[Manifest]:
        if not self.directory.is_dir():
            return
        for path in self.directory.glob("*.json"):
            try:
                m = msgspec.json.decode(path.read_bytes(), type=Manifest)
            except (OSError, msgspec.DecodeError):
                continue
            if (m.format, m.space, m.dim) == (FORMAT, self.space, self.dim):
                yield m

    def saved(self) -> set[str]:
        """Scopes with a snapshot this cache can adopt."""
        return {m.scope for m in self._manifests()}

    def save(self, scope: str, write: Any, count: int) -> None:
        """``write(path)`` writes the graph; it lands under its final name only when whole."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        data, meta = self._paths(scope)
        tmp = data.with_suffix(".tmp")
        t0 = time.perf_counter()
        write(str(tmp))
        os.chmod(tmp, 0o600)
        os.replace(tmp, data)
        manifest = Manifest(scope, self.space, self.dim, count, time.time())
        meta.write_bytes(msgspec.json.encode(manifest))
        self.saved_count += 1
        log.info("index snapshot: %d vectors in %.1fs", count, time.perf_counter() - t0)

    def save_built(self, scope: str) -> Any:
        """An ``on_built`` callback for ``ScopeIndex.rebuild``: save the new graph."""

        def on_built(graph: Any) -> None:
            import faiss

            try:
                self.save(scope, lambda p: faiss.write_index(graph, p), int(graph.ntotal))
            except OSError as exc:
                log.warning("index snapshot not written: %s", exc)

        return on_built

    def save_changed(self, indexes: IndexSet) -> int:
        """At shutdown: save every HNSW graph changed by ``min_changes`` since its last save."""
        done = 0
        for scope in indexes:
            idx = indexes.get(scope)
            if idx is None or idx.kind != "hnsw" or idx.changes < self.min_changes:
                continue
            try:
                self.save(scope, idx.write, idx.ntotal)
                done += 1
            except OSError as exc:
                log.warning("index snapshot not written: %s", exc)
        return done

    def read(self, scope: str) -> Any | None:
        import faiss

        data, _ = self._paths(scope)
        try:
            return faiss.read_index(str(data))
        except (OSError, RuntimeError) as exc:
            log.warning("index snapshot unreadable, rebuilding that scope: %s", exc)
            return None

    def drop(self, scope: str) -> None:
        for path in self._paths(scope):
            path.unlink(missing_ok=True)


def load_indexes(
    indexes: IndexSet, store: Store, snapshots: IndexSnapshots | None = None
) -> tuple[int, int]:
    """Bring ``indexes`` in step with ``store`` (see the module docstring); blocking. Returns
    (vectors fetched from the store, vectors adopted from snapshots)."""
    by_scope: dict[str, list[int]] = {}
    for entry_id, scope in store.iter_ids():
        by_scope.setdefault(scope, []).append(entry_id)
    saved = snapshots.saved() if snapshots is not None else set()
    fetch: list[int] = []
    to_side: set[int] = set()
    adopted = 0
    for scope, ids in by_scope.items():
        idx = indexes.get(scope)
        if idx is None and scope in saved and snapshots is not None:
            idx = _adopt(indexes, scope, snapshots)
            adopted += len(idx) if idx is not None else 0
        if idx is None:
            fetch += ids
            continue
        have, want = idx.ids(), set(ids)
        extra = have - want
        if extra:
            indexes.remove(extra)
        missing = [i for i in ids if i not in have]
        if idx.kind == "hnsw":
            to_side.update(missing)
        else:
            fetch += missing
    for scope in list(indexes):  # scopes the store no longer has at all
        if scope not in by_scope and (idx := indexes.get(scope)) is not None:
            indexes.remove(idx.ids())
    if snapshots is not None:
        for scope in saved - set(by_scope):
            snapshots.drop(scope)
    wanted = fetch + sorted(to_side)
    for start in range(0, len(wanted), _FETCH):
        rows = store.vectors(wanted[start : start + _FETCH])
        plain = [r for r in rows if r[0] not in to_side]
        indexes.load(plain)
        _to_side(indexes, [r for r in rows if r[0] in to_side])
    return len(wanted), adopted


def _adopt(indexes: IndexSet, scope: str, snapshots: IndexSnapshots) -> ScopeIndex | None:
    graph = snapshots.read(scope)
    if graph is None:
        return None
    try:
        idx = ScopeIndex.adopt(graph, indexes.dim, indexes.hnsw_min_size, auto_rebuild=False)
    except ValueError as exc:
        log.warning("index snapshot not adopted: %s", exc)
        return None
    indexes.attach(scope, idx)
    return idx


def _to_side(indexes: IndexSet, rows: list[tuple[int, str, bytes]]) -> None:
    by_scope: dict[str, tuple[list[int], list[bytes]]] = {}
    width = indexes.dim * 4
    for entry_id, scope, vec in rows:
        if len(vec) == width:
            ids, vecs = by_scope.setdefault(scope, ([], []))
            ids.append(entry_id)
            vecs.append(vec)
    for scope, (ids, vecs) in by_scope.items():
        idx = indexes.get(scope)
        if idx is not None:
            mat = np.frombuffer(b"".join(vecs), dtype=np.float32).reshape(len(ids), indexes.dim)
            idx.add_side(ids, mat)
            indexes.attach(scope, idx, ids)
