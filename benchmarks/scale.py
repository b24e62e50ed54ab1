"""A million entries on one node: the cache at 10k, 100k and 1M entries in one scope.

For each size, on vectors shaped like sentence embeddings (``scale_data.py``):

- **index**: the gateway's own ``ScopeIndex`` (flat up to ``hnsw_min_size``, then HNSW with the
  shipped parameters): build time, lookup p50/p99 (one thread, k = 4), recall against exact
  search for paraphrase-like queries (cosine 0.95 from an entry) and for queries near the 0.9
  threshold, the graph file's size and write/read time;
- **per store** (SQLite, Redis): the store is filled with the entries plus a few real prompts,
  the graph is saved where a gateway keeps it, and a real ``sidecache serve`` is started:
  restart to ``/readyz``, semantic and exact hits over HTTP (p50/p99), the gateway's memory per
  entry (RSS over an empty gateway's), Redis's memory per entry beyond the answer text, and a
  new replica (no saved graph): time to ``/readyz`` with its mirror loaded from the store, and
  (``--until-hnsw``, or at up to 100k entries) until its graph is built.

``--sweep`` measures the HNSW parameters instead (M, efConstruction, efSearch: build rate,
latency, recall) at ``--sweep-size`` entries.

    python benchmarks/scale.py [--sizes 10000,100000,1000000] [--stores sqlite,redis] [--save]
    python benchmarks/scale.py --sweep [--sweep-size 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

import scale_data  # noqa: E402
from report import add_save_flag, results_dir  # noqa: E402
from support import Gateway, basic_config, start_upstream, write_config  # noqa: E402
from support.redis_server import RedisServer  # noqa: E402

from sidecache.cache.entries import Entry  # noqa: E402
from sidecache.cache.index import EF_CONSTRUCTION, EF_SEARCH, HNSW_M, ScopeIndex  # noqa: E402
from sidecache.cache.policy import decide, normalise_key  # noqa: E402
from sidecache.cache.snapshots import IndexSnapshots  # noqa: E402
from sidecache.config import CacheConfig, EmbedderConfig  # noqa: E402

ONNX_DIR = ROOT / "benchmarks" / ".cache" / "onnx"
ADMIN = "sk-bench-admin"
THRESHOLD = 0.9
NEAR_NOISE = 0.0233
"""Per-dimension query noise giving cosine about 0.91 with the entry: near the threshold."""
REAL = [
    f"How do I {v} {o} in {t}?"
    for v, o, t in zip(
        scale_data._VERBS * 5, scale_data._OBJECTS * 4, scale_data._TECH * 5, strict=False
    )
][:60]
"""Real prompts stored among the synthetic entries; asked again as "How can I ..." for hits."""
ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-x",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "A stored answer of about fifty words, " * 6,
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 60, "total_tokens": 72},
    }
).encode()


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples), q)) if samples else float("nan")


def cores() -> int:
    return len(os.sched_getaffinity(0))


# -- index level -------------------------------------------------------------------------------


def exact_top1(vecs: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    best_s = np.full(len(q), -2.0, dtype=np.float32)
    best_i = np.zeros(len(q), dtype=np.int64)
    for start in range(0, len(vecs), 100_000):
        scores = q @ vecs[start : start + 100_000].T
        i = scores.argmax(axis=1)
        s = scores[np.arange(len(q)), i]
        better = s > best_s
        best_s[better], best_i[better] = s[better], i[better] + start
    return best_s, best_i


def recall(idx: ScopeIndex, vecs: np.ndarray, q: np.ndarray, ids0: int = 1) -> dict[str, float]:
    """Against exact search, over queries whose exact best match reaches the threshold."""
    s0, i0 = exact_top1(vecs, q)
    same = hits = n = 0
    for row, (s, i) in enumerate(zip(s0, i0, strict=True)):
        if s < THRESHOLD:
            continue
        n += 1
        found = idx.search(q[row], 4)
        same += bool(found) and found[0][0] == int(i) + ids0
        hits += any(score >= THRESHOLD for _, score in found)
    return {"queries": n, "top1": same / n if n else float("nan"), "hit": hits / n if n else 0.0}


def index_figures(
    vecs: np.ndarray, queries: int, reuse: bool = True
) -> tuple[ScopeIndex, dict[str, Any]]:
    n = len(vecs)
    kept = scale_data.CACHE / f"graph-{n}-M{HNSW_M}-efc{EF_CONSTRUCTION}.faiss"
    built_s = kept.with_suffix(".build_s")
    if reuse and kept.exists() and built_s.exists():  # built by an earlier run: minutes at 1M
        import faiss

        idx = ScopeIndex.adopt(faiss.read_index(str(kept)), vecs.shape[1], 10_000)
        idx.auto_rebuild = False
        build = float(built_s.read_text())
    else:
        idx = ScopeIndex(vecs.shape[1], 10_000, auto_rebuild=False)
        t0 = time.perf_counter()
        for start in range(0, n, 100_000):
            chunk = vecs[start : start + 100_000]
            idx.add(range(start + 1, start + 1 + len(chunk)), chunk)
        if idx.needs_rebuild:
            idx.rebuild(threads=cores())
        build = time.perf_counter() - t0
        if idx.kind == "hnsw" and n >= 1_000_000:
            idx.write(str(kept))
            built_s.write_text(str(build))
    _, para = scale_data.queries(vecs, queries)
    rng = np.random.default_rng(5)
    near = vecs[rng.integers(0, n, queries)]
    near = near + rng.standard_normal(near.shape).astype(np.float32) * NEAR_NOISE
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    lat = []
    for row in para:
        t = time.perf_counter()
        idx.search(row, 4)
        lat.append((time.perf_counter() - t) * 1000)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "g.faiss")
        t = time.perf_counter()
        wrote = idx.write(path)
        write_s = time.perf_counter() - t
        size = os.path.getsize(path) if wrote else 0
        read_s = float("nan")
        if wrote:
            import faiss

            t = time.perf_counter()
            faiss.read_index(path)
            read_s = time.perf_counter() - t
    figures = {
        "kind": idx.kind,
        "build_s": round(build, 2),
        "lookup_p50_ms": round(pct(lat, 50), 3),
        "lookup_p99_ms": round(pct(lat, 99), 3),
        "recall_paraphrase": recall(idx, vecs, para),
        "recall_near_threshold": recall(idx, vecs, near),
        "graph_bytes_per_entry": round(size / n) if size else None,
        "graph_write_s": round(write_s, 2) if wrote else None,
        "graph_read_s": round(read_s, 2) if wrote else None,
    }
    return idx, figures


def sweep(size: int, queries: int) -> list[dict[str, Any]]:
    import faiss

    vecs = scale_data.entries(scale_data.base_vectors(ONNX_DIR), size)
    _, para = scale_data.queries(vecs, queries)
    rows = []
    for m, efc in ((16, 40), (16, 80), (32, 40), (32, 64)):
        idx = ScopeIndex(vecs.shape[1], 0, hnsw_m=m, ef_construction=efc, auto_rebuild=False)
        idx.add(range(1, size + 1), vecs)
        t0 = time.perf_counter()
        idx.rebuild(threads=cores())
        build = time.perf_counter() - t0
        for ef in (16, 32, 64, 128):
            idx.ef_search = ef
            faiss.downcast_index(idx._index.index).hnsw.efSearch = ef
            lat = []
            for row in para:
                t = time.perf_counter()
                idx.search(row, 4)
                lat.append((time.perf_counter() - t) * 1000)
            row = {
                "M": m,
                "efConstruction": efc,
                "efSearch": ef,
                "build_per_s": round(size / build),
            }
            row |= {"p50_ms": round(pct(lat, 50), 3), "p99_ms": round(pct(lat, 99), 3)}
            row |= {"recall": recall(idx, vecs, para)["top1"]}
            print(row, flush=True)
            rows.append(row)
    return rows


def sweep_ef(size: int, queries: int) -> list[dict[str, Any]]:
    """efSearch on the shipped graph (M, efConstruction) at ``size``: built once and kept under
    ``.cache/scale`` (a million takes minutes), then searched at each efSearch."""
    import faiss

    vecs = scale_data.entries(scale_data.base_vectors(ONNX_DIR), size)
    path = scale_data.CACHE / f"graph-{size}-M{HNSW_M}-efc{EF_CONSTRUCTION}.faiss"
    if path.exists():
        idx = ScopeIndex.adopt(faiss.read_index(str(path)), vecs.shape[1], 0, auto_rebuild=False)
    else:
        idx = ScopeIndex(vecs.shape[1], 0, auto_rebuild=False)
        idx.add(range(1, size + 1), vecs)
        t0 = time.perf_counter()
        idx.rebuild(threads=cores())
        path.with_suffix(".build_s").write_text(str(time.perf_counter() - t0))
        idx.write(str(path))
    _, para = scale_data.queries(vecs, queries)
    rng = np.random.default_rng(5)
    near = vecs[rng.integers(0, size, queries)]
    near = near + rng.standard_normal(near.shape).astype(np.float32) * NEAR_NOISE
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    rows = []
    for ef in (32, 64, 96, 128, 192, 256):
        idx.ef_search = ef
        faiss.downcast_index(idx._index.index).hnsw.efSearch = ef
        lat = []
        for row in para:
            t = time.perf_counter()
            idx.search(row, 4)
            lat.append((time.perf_counter() - t) * 1000)
        out = {"entries": size, "efSearch": ef, "p50_ms": round(pct(lat, 50), 3)}
        out |= {"p99_ms": round(pct(lat, 99), 3)}
        out |= {"recall": recall(idx, vecs, para)["top1"], "recall_near": recall(idx, vecs, near)}
        print(out, flush=True)
        rows.append(out)
    return rows


# -- stores and gateways -----------------------------------------------------------------------


def real_vectors() -> tuple[np.ndarray, str]:
    from sidecache.cache.embedder import load_embedder

    emb = load_embedder(EmbedderConfig(onnx_dir=str(ONNX_DIR)), scale_data.CACHE / "data")
    return emb.encode(REAL), str(getattr(emb, "space", emb.name))


def scope_of(space: str) -> str:
    body = {"model": "m1", "messages": [{"role": "user", "content": REAL[0]}]}
    d = decide(
        body,
        tenant="anonymous",
        alias="m1",
        namespace=None,
        cache_control=None,
        cfg=CacheConfig(),
        space=space,
    )
    return d.scope


def entries(scope: str, vecs: np.ndarray, real: np.ndarray) -> Any:
    """Entry ``i + 1`` for synthetic vector ``i``; the real prompts after them."""
    now = time.time()
    texts = [f"synthetic prompt number {i}" for i in range(len(vecs))] + REAL
    for i, text in enumerate(texts):
        vec = vecs[i] if i < len(vecs) else real[i - len(vecs)]
        key_hash = hashlib.sha256(f"{scope}\0{normalise_key(text)}".encode()).hexdigest()
        yield Entry(
            id=i + 1,
            scope=scope,
            tenant="anonymous",
            model="m1",
            key_text=text,
            key_hash=key_hash,
            vector=vec.tobytes(),
            response=ANSWER,
            created=now,
            last_hit=now,
        )


def fill_sqlite(data_dir: Path, scope: str, vecs: np.ndarray, real: np.ndarray) -> float:
    from sidecache.cache.sqlite_store import _FIELDS, _REPLACE, SqliteStore

    t0 = time.perf_counter()
    store = SqliteStore(data_dir / "cache.db")
    db = store._db
    batch: list[list[Any]] = []
    db.execute("BEGIN")
    for e in entries(scope, vecs, real):
        batch.append([getattr(e, f) for f in _FIELDS])
        if len(batch) == 20_000:
            db.executemany(_REPLACE, batch)
            batch = []
    db.executemany(_REPLACE, batch)
    db.execute(
        "INSERT OR REPLACE INTO counters (name, value) VALUES ('next_id', ?)",
        (len(vecs) + len(real) + 1,),
    )
    db.execute("COMMIT")
    store.close()
    return time.perf_counter() - t0


def fill_redis(url: str, prefix: str, scope: str, vecs: np.ndarray, real: np.ndarray) -> float:
    from sidecache.cache.redis_store import RedisStore
    from sidecache.config import RedisConfig

    store = RedisStore.from_config(RedisConfig(url=url, key_prefix=prefix, timeout_seconds=30))
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        for _ in pool.map(store.put, entries(scope, vecs, real), chunksize=256):
            pass
    store._r.set(f"{prefix}next_id", len(vecs) + len(real) + 1)
    took = time.perf_counter() - t0
    store.close()
    return took


def redis_memory(server: RedisServer) -> int:
    import redis

    client = redis.Redis.from_url(server.url)
    used = int(client.info("memory")["used_memory"])
    client.close()
    return used


def gateway_text(upstream: Any, data_dir: Path, store: str, redis_url: str, prefix: str) -> str:
    cache = f'store = "{store}"\nmax_entries = 5000000\n[cache.embedder]\nonnx_dir = "{ONNX_DIR}"\n'
    if store == "redis":
        cache += (
            f'[cache.redis]\nurl = "{redis_url}"\nkey_prefix = "{prefix}"\ntimeout_seconds = 30\n'
        )
    return basic_config(
        [upstream],
        data_dir.parent,
        cache=True,
        cache_extra=cache,
        server_extra=f'admin_key = "{ADMIN}"',
    ).replace(str(data_dir.parent / "data"), str(data_dir))


def rss(gw: Gateway) -> int:
    assert gw.proc is not None
    for line in Path(f"/proc/{gw.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cache_stats(gw: Gateway) -> dict[str, Any]:
    with gw.http(ADMIN) as http:
        doc: dict[str, Any] = http.get("/admin/cache/stats").json()
    return doc


def start(gw: Gateway) -> float:
    t0 = time.perf_counter()
    gw.start()
    return time.perf_counter() - t0


def http_hits(gw: Gateway, samples: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with httpx.Client(base_url=gw.url, timeout=60) as http:
        for text in REAL[:20]:  # warm up: model arenas, connections, pages
            body = {"model": "m1", "messages": [{"role": "user", "content": text + " Why?"}]}
            http.post("/v1/chat/completions", json=body, headers={"cache-control": "no-store"})
        for kind, texts in (
            ("semantic", [t.replace("How do I", "How can I") for t in REAL]),
            ("exact", REAL),
        ):
            lat, outcomes = [], []
            for i in range(samples):
                body = {
                    "model": "m1",
                    "messages": [{"role": "user", "content": texts[i % len(texts)]}],
                }
                t = time.perf_counter()
                r = http.post(
                    "/v1/chat/completions", json=body, headers={"cache-control": "no-store"}
                )
                took = (time.perf_counter() - t) * 1000
                outcome = r.headers.get("x-sidecache", "")
                outcomes.append(outcome)
                if outcome == f"hit-{kind}":
                    lat.append(took)
            out[kind] = {
                "p50_ms": round(pct(lat, 50), 2),
                "p99_ms": round(pct(lat, 99), 2),
                "hit_rate": round(len(lat) / samples, 3),
            }
    return out


def http_paired(small: Gateway, big: Gateway, samples: int) -> dict[str, Any]:
    """Semantic hits sent alternately to a 10k gateway and this one: on a shared machine, only
    requests taken side by side see the same load."""
    texts = [t.replace("How do I", "How can I") for t in REAL]
    lat: dict[str, list[float]] = {"10k": [], "this": []}
    with (
        httpx.Client(base_url=small.url, timeout=60) as a,
        httpx.Client(base_url=big.url, timeout=60) as b,
    ):
        for i in range(samples):
            body = {"model": "m1", "messages": [{"role": "user", "content": texts[i % len(texts)]}]}
            for name, http in (("10k", a), ("this", b)) if i % 2 else (("this", b), ("10k", a)):
                t = time.perf_counter()
                r = http.post(
                    "/v1/chat/completions", json=body, headers={"cache-control": "no-store"}
                )
                if r.headers.get("x-sidecache") == "hit-semantic":
                    lat[name].append((time.perf_counter() - t) * 1000)
    out = {f"{k}_p50_ms": round(pct(v, 50), 2) for k, v in lat.items()}
    out |= {f"{k}_p99_ms": round(pct(v, 99), 2) for k, v in lat.items()}
    out["p50_delta_ms"] = round(out["this_p50_ms"] - out["10k_p50_ms"], 2)
    return out


def store_figures(
    store: str,
    idx: ScopeIndex | None,
    vecs: np.ndarray,
    real: np.ndarray,
    space: str,
    args: argparse.Namespace,
    upstream: Any,
    server: RedisServer | None,
    baseline: dict[str, int],
) -> dict[str, Any]:
    n = len(vecs)
    work = Path(tempfile.mkdtemp(prefix=f"scale-{store}-"))
    prefix = f"scale{n}:"
    url = server.url if server is not None else ""
    scope = scope_of(space)
    out: dict[str, Any] = {}
    try:
        before = redis_memory(server) if server is not None else 0
        if store == "sqlite":
            out["fill_s"] = round(fill_sqlite(work / "a", scope, vecs, real), 1)
        else:
            out["fill_s"] = round(fill_redis(url, prefix, scope, vecs, real), 1)
            stored = redis_memory(server) - before
            out["redis_bytes_per_entry"] = round(stored / (n + len(REAL)))
            out["redis_bytes_per_entry_beyond_answer"] = round(
                stored / (n + len(REAL)) - len(ANSWER)
            )
        if idx is not None and idx.kind == "hnsw":
            idx.add(range(n + 1, n + 1 + len(REAL)), real)
            snaps = IndexSnapshots(work / "a" / "index", dim=vecs.shape[1], space=space)
            snaps.save(scope, idx.write, idx.ntotal)
        gw = Gateway(
            write_config(work, gateway_text(upstream, work / "a", store, url, prefix)),
            log_path=work / "a.log",
            ready_timeout=1800,
        )
        out["restart_to_ready_s"] = round(start(gw), 2)
        stats = cache_stats(gw)
        out["index_kinds"] = stats.get("index_kinds")
        out["http"] = http_hits(gw, args.http)
        out["rss_bytes_per_entry"] = round((rss(gw) - baseline.get(store, 0)) / max(1, n))
        if args.paired and n > 10_000:  # a 10k gateway beside it, asked in turn
            small = work / "s"
            if store == "sqlite":
                fill_sqlite(small, scope, vecs[:10_000], real)
            else:
                fill_redis(url, "small:", scope, vecs[:10_000], real)
            gws = Gateway(
                write_config(work, gateway_text(upstream, small, store, url, "small:"), "s.toml"),
                log_path=work / "s.log",
            )
            start(gws)
            http_hits(gws, 20)
            out["http_paired_with_10k"] = http_paired(gws, gw, args.http)
            gws.stop()
        gw.stop(timeout=120)
        # a new replica: no saved graph, its mirror loaded from the store
        fresh = work / "b"
        if store == "sqlite":  # the same file, without its saved graph
            shutil.rmtree(work / "a" / "index", ignore_errors=True)
            fresh = work / "a"
        gw2 = Gateway(
            write_config(work, gateway_text(upstream, fresh, store, url, prefix), "b.toml"),
            log_path=work / "b.log",
            ready_timeout=1800,
        )
        t0 = time.perf_counter()
        out["new_replica_ready_s"] = round(start(gw2), 2)
        if n <= 100_000 or (args.until_hnsw and store == "redis"):
            while cache_stats(gw2).get("index_kinds", {}).get("flat", 0) and n > 10_000:
                time.sleep(1.0)
            out["new_replica_graph_built_s"] = round(time.perf_counter() - t0, 1)
        gw2.stop(timeout=120)
    finally:
        if server is not None:
            import redis

            client = redis.Redis.from_url(url, socket_timeout=600)
            client.flushdb(asynchronous=True)
            client.close()
        shutil.rmtree(work, ignore_errors=True)
    return out


def empty_rss(
    store: str,
    upstream: Any,
    server: RedisServer | None,
    samples: int,
    real: np.ndarray,
    space: str,
) -> int:
    """RSS of a gateway holding only the real prompts, after the same traffic."""
    work = Path(tempfile.mkdtemp(prefix="scale-empty-"))
    url = server.url if server is not None else ""
    none = np.zeros((0, real.shape[1]), dtype=np.float32)
    try:
        if store == "sqlite":
            fill_sqlite(work / "a", scope_of(space), none, real)
        else:
            fill_redis(url, "empty:", scope_of(space), none, real)
        gw = Gateway(
            write_config(work, gateway_text(upstream, work / "a", store, url, "empty:")),
            log_path=work / "a.log",
        )
        start(gw)
        http_hits(gw, samples)
        used = rss(gw)
        gw.stop()
        return used
    finally:
        if server is not None:
            import redis

            client = redis.Redis.from_url(url, socket_timeout=600)
            client.flushdb(asynchronous=True)
            client.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop children on kill too
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--http", type=int, default=300, help="requests per HTTP figure")
    parser.add_argument(
        "--until-hnsw",
        action="store_true",
        help="wait for a new replica's graph at every size (minutes at 1M)",
    )
    parser.add_argument(
        "--no-paired",
        dest="paired",
        action="store_false",
        help="skip the side-by-side HTTP comparison with a 10k gateway",
    )
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument(
        "--sweep-ef", action="store_true", help="efSearch on the shipped graph at --sweep-size"
    )
    parser.add_argument("--sweep-size", type=int, default=100_000)
    add_save_flag(parser)
    args = parser.parse_args()
    out_dir = results_dir(args.save)
    if args.sweep or args.sweep_ef:
        rows = (sweep_ef if args.sweep_ef else sweep)(args.sweep_size, args.queries)
        name = "scale_sweep_ef" if args.sweep_ef else "scale_sweep"
        (out_dir / f"{name}-{args.sweep_size}.json").write_text(json.dumps(rows, indent=1))
        return
    base = scale_data.base_vectors(ONNX_DIR)
    real, space = real_vectors()
    stores = [s for s in args.stores.split(",") if s]
    upstream = start_upstream("u1", "openai")
    server = RedisServer().start() if "redis" in stores else None
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {cores()} cores, {platform.python_version()}",
        "hnsw": {"M": HNSW_M, "efConstruction": EF_CONSTRUCTION, "efSearch": EF_SEARCH},
        "threshold": THRESHOLD,
        "sizes": {},
    }
    try:
        baseline = {
            s: empty_rss(s, upstream, server if s == "redis" else None, args.http, real, space)
            for s in stores
        }
        results["empty_gateway_rss_mb"] = {s: round(v / 2**20) for s, v in baseline.items()}
        for n in (int(x) for x in args.sizes.split(",")):
            vecs = scale_data.entries(base, n)
            idx, figures = index_figures(vecs, args.queries)
            print(f"{n:>9,} index: {figures}", flush=True)
            row: dict[str, Any] = {"index": figures}
            for store in stores:
                row[store] = store_figures(
                    store,
                    idx,
                    vecs,
                    real,
                    space,
                    args,
                    upstream,
                    server if store == "redis" else None,
                    baseline,
                )
                print(f"{n:>9,} {store}: {row[store]}", flush=True)
            results["sizes"][str(n)] = row
            del idx, vecs
            (out_dir / "scale.json").write_text(json.dumps(results, indent=1))
    finally:
        upstream.close()
        if server is not None:
            server.close()
    table(results)


def table(results: dict[str, Any]) -> None:
    print(
        f"\n{results['machine']}; HNSW {results['hnsw']}; empty gateway RSS "
        f"{results['empty_gateway_rss_mb']} MB"
    )
    head = (
        f"{'entries':>9} {'store':<7}{'index p50/p99 ms':>17}{'recall':>8}{'HTTP sem p50/p99':>18}"
        f"{'exact p50':>10}{'B/entry':>9}{'restart s':>10}{'new replica s':>15}"
    )
    print(head)
    for n, row in results["sizes"].items():
        ix = row["index"]
        for store in ("sqlite", "redis"):
            s = row.get(store)
            if s is None:
                continue
            http = s["http"]
            replica = f"{s['new_replica_ready_s']}"
            if "new_replica_graph_built_s" in s:
                replica += f"/{s['new_replica_graph_built_s']}"
            mem = f"{s['rss_bytes_per_entry']}"
            if "redis_bytes_per_entry_beyond_answer" in s:
                mem += f"+{s['redis_bytes_per_entry_beyond_answer']}r"
            paired = s.get("http_paired_with_10k")
            if paired:
                print(
                    f"{'':>9} {store:<7} side by side with a 10k gateway: semantic hit p50"
                    f" {paired['this_p50_ms']} ms vs {paired['10k_p50_ms']} ms"
                    f" (delta {paired['p50_delta_ms']} ms)"
                )
            print(
                f"{int(n):>9,} {store:<7}{ix['lookup_p50_ms']:>8}/{ix['lookup_p99_ms']:<8}"
                f"{ix['recall_paraphrase']['top1']:>8.3f}"
                f"{http['semantic']['p50_ms']:>9}/{http['semantic']['p99_ms']:<8}"
                f"{http['exact']['p50_ms']:>10}{mem:>9}{s['restart_to_ready_s']:>10}{replica:>15}"
            )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
