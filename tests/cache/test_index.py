"""FAISS per scope: flat while small, HNSW past a size, removals and tombstones."""

from __future__ import annotations

import numpy as np

from sidecache.cache.index import IndexSet, ScopeIndex

DIM = 32


def unit(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    out: np.ndarray = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def test_flat_search_finds_itself_best_first() -> None:
    idx = ScopeIndex(DIM, hnsw_min_size=1000)
    vecs = unit(50)
    assert idx.add(range(100, 150), vecs) == 50
    hits = idx.search(vecs[7], k=4)
    assert hits[0][0] == 107
    assert abs(hits[0][1] - 1.0) < 1e-5
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert idx.kind == "flat"
    assert len(idx) == 50


def test_adding_an_existing_id_is_a_no_op() -> None:
    idx = ScopeIndex(DIM)
    vecs = unit(3)
    idx.add([1, 2, 3], vecs)
    assert idx.add([2], vecs[:1]) == 0
    assert len(idx) == 3
    assert idx.ntotal == 3


def test_switch_to_hnsw_keeps_results() -> None:
    vecs = unit(400, seed=1)
    queries = vecs[::37] + 0.05 * unit(len(vecs[::37]), seed=2)
    idx = ScopeIndex(DIM, hnsw_min_size=300)
    idx.add(range(300), vecs[:300])
    assert idx.kind == "flat"
    before = [idx.search(q, k=1)[0][0] for q in queries]
    idx.add(range(300, 400), vecs[300:])
    assert idx.kind == "hnsw"
    assert idx.rebuilds == 1
    assert len(idx) == 400
    flat = ScopeIndex(DIM, hnsw_min_size=10_000)
    flat.add(range(400), vecs)
    for q, b in zip(queries, before, strict=True):
        got = idx.search(q, k=1)[0]
        want = flat.search(q, k=1)[0]
        assert got[0] == want[0]
        assert abs(got[1] - want[1]) < 1e-5
        if b < 300 and want[0] < 300:
            assert got[0] == b


def test_remove_from_flat() -> None:
    idx = ScopeIndex(DIM)
    vecs = unit(10)
    idx.add(range(10), vecs)
    assert idx.remove([3, 99]) == 1
    assert 3 not in idx
    assert all(i != 3 for i, _ in idx.search(vecs[3], k=10))
    assert len(idx) == 9 and idx.ntotal == 9


def test_remove_from_hnsw_uses_tombstones_then_rebuilds() -> None:
    vecs = unit(200, seed=3)
    idx = ScopeIndex(DIM, hnsw_min_size=50, rebuild_min_tombstones=20, rebuild_ratio=0.1)
    idx.add(range(200), vecs)
    assert idx.kind == "hnsw"
    rebuilds = idx.rebuilds
    assert idx.remove(range(10)) == 10
    assert idx.tombstones == 10 and idx.ntotal == 200
    for i in range(10):
        assert all(hit != i for hit, _ in idx.search(vecs[i], k=5))
    assert idx.search(vecs[10], k=1)[0][0] == 10
    idx.remove(range(10, 40))  # 40 tombstones > max(20, 10% of 200): rebuild
    assert idx.rebuilds == rebuilds + 1
    assert idx.tombstones == 0 and idx.ntotal == 160 and len(idx) == 160
    assert idx.search(vecs[150], k=1)[0][0] == 150
    # re-adding a removed id after a rebuild works
    idx.add([5], vecs[5:6])
    assert idx.search(vecs[5], k=1)[0][0] == 5


def test_k_larger_than_size_and_empty() -> None:
    idx = ScopeIndex(DIM)
    assert idx.search(unit(1)[0]) == []
    idx.add([1], unit(1))
    assert len(idx.search(unit(1)[0], k=10)) == 1


def test_index_set_scopes_are_separate() -> None:
    s = IndexSet(DIM, hnsw_min_size=1000)
    a, b = unit(5, seed=4), unit(5, seed=5)
    s.add("scope-a", range(5), a)
    s.add("scope-b", range(10, 15), b)
    assert s.scopes == 2 and len(s) == 10
    assert {i for i, _ in s.search("scope-a", b[0], k=5)} <= set(range(5))
    assert s.search("nope", a[0]) == []
    assert s.scope_of(12) == "scope-b"
    assert s.remove([0, 1, 2, 3, 4, 12]) == 6
    assert s.get("scope-a") is None  # emptied scopes are dropped
    assert s.scopes == 1 and len(s) == 4
    s.drop("scope-b")
    assert s.scopes == 0 and len(s) == 0


def test_background_rebuild_while_changing() -> None:
    import threading

    vecs = unit(700, seed=6)
    idx = ScopeIndex(DIM, hnsw_min_size=200, auto_rebuild=False)
    idx.add(range(300), vecs[:300])
    assert idx.kind == "flat" and idx.needs_rebuild  # past the size, but waits for its owner
    builder = threading.Thread(target=idx.rebuild, kwargs={"threads": 1})
    builder.start()
    for i in range(300, 700, 10):  # changes race with the build
        idx.add(range(i, i + 10), vecs[i : i + 10])
        idx.remove([i - 300])
    builder.join()
    if idx.needs_rebuild:
        idx.rebuild(threads=1)
    assert idx.kind == "hnsw" and not idx.needs_rebuild
    removed = set(range(0, 400, 10))
    assert len(idx) == 700 - len(removed)
    for i in range(0, 700, 7):
        top = idx.search(vecs[i], k=1)
        if i in removed:
            assert all(hit != i for hit, _ in idx.search(vecs[i], k=5))
        else:
            assert top[0][0] == i


def test_an_adopted_graph_serves_side_entries_then_absorbs_them(tmp_path) -> None:
    vecs = unit(300, seed=4)
    built = ScopeIndex(DIM, hnsw_min_size=50)
    built.add(range(1, 201), vecs[:200])
    built.rebuild()
    assert built.kind == "hnsw"
    path = str(tmp_path / "g.faiss")
    assert built.write(path) and built.changes == 0

    import faiss

    idx = ScopeIndex.adopt(faiss.read_index(path), DIM, 50, auto_rebuild=False)
    assert idx.kind == "hnsw" and idx.ids() == set(range(1, 201))
    idx.add_side(list(range(201, 301)), vecs[200:])  # written after the graph was saved
    assert idx.pending_absorb == 100 and len(idx) == 300
    assert idx.search(vecs[250], 1)[0][0] == 251  # a side entry answers at once
    assert idx.search(vecs[10], 1)[0][0] == 11
    assert idx.remove([251, 11]) == 2  # one from the side, one a tombstone in the graph
    assert idx.search(vecs[250], 1)[0][0] != 251 and idx.search(vecs[10], 1)[0][0] != 11
    moved = 0
    while step := idx.absorb(16):
        assert step <= 16
        moved += step
    assert moved == 99 and idx.pending_absorb == 0
    assert idx.search(vecs[290], 1)[0][0] == 291  # now in the graph
    assert idx.rebuild() and idx.search(vecs[290], 1)[0][0] == 291 and idx.tombstones == 0


def test_adopt_refuses_what_is_not_a_graph_of_this_dimension() -> None:
    import faiss
    import pytest

    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    with pytest.raises(ValueError):
        ScopeIndex.adopt(flat, DIM, 10)
    graph = faiss.IndexIDMap2(faiss.IndexHNSWFlat(DIM * 2, 8, faiss.METRIC_INNER_PRODUCT))
    with pytest.raises(ValueError):
        ScopeIndex.adopt(graph, DIM, 10)


def test_a_rebuild_goes_chunk_by_chunk_sees_changes_and_stops_on_shutdown(monkeypatch) -> None:
    import sidecache.cache.index as index_module

    monkeypatch.setattr(index_module, "_BUILD_CHUNK", 50)
    vecs = unit(260, seed=9)
    idx = ScopeIndex(DIM, hnsw_min_size=100, auto_rebuild=False)
    idx.add(range(1, 201), vecs[:200])
    calls = []

    def changing() -> bool:  # between chunks: the cache keeps changing
        calls.append(1)
        if len(calls) == 2:
            idx.remove([1, 120])  # one already built, one not yet
            idx.add(range(201, 261), vecs[200:])
        return False

    assert idx.rebuild(stop=changing) and idx.kind == "hnsw" and len(calls) == 4
    assert len(idx) == 258 and idx.search(vecs[250], 1)[0][0] == 251
    assert all(i not in (1, 120) for i, _ in idx.search(vecs[0], 4) + idx.search(vecs[119], 4))

    flat = ScopeIndex(DIM, hnsw_min_size=100, auto_rebuild=False)
    flat.add(range(1, 201), vecs[:200])
    assert not flat.rebuild(stop=lambda: True)  # shutting down: abandoned, nothing swapped
    assert flat.kind == "flat" and len(flat) == 200 and flat.rebuild()
