"""GPTCache and sidecache side by side, on the same data, the same model, in one run.

Both caches use all-MiniLM-L6-v2 through sidecache's own embedder (one loaded model, shared),
FAISS and SQLite. GPTCache 0.1.44 is configured the way its benchmark is: ``get_prompt`` as the
pre-embedding function, SQLite + FAISS data manager, ``SearchDistanceEvaluation`` (its default)
and ``Config(similarity_threshold=t)``. With unit vectors FAISS returns squared L2 distance
d = 2 - 2 cos; GPTCache hits when ``4 - d >= 4 t``, that is cos >= 2t - 1. So its published
thresholds 0.95 / 0.90 / 0.80 mean cosine 0.90 / 0.80 / 0.60, and sidecache is run at those same
cosines (plus its own recommended operating point), verifier on and off, so the differences are
sidecache's ranking and its verifier.

Sidecache runs through ``sidecache.cache.semantic.SemanticCache`` (exact layer, FAISS search of
the best 4 candidates offered best-first to the verifier, near ties on cosine going to the
closest wording), with the shipped hit verifier given the two sentence vectors (the query's and
the stored entry's).

Two protocols:

1. GPTCache's published one on ``gptcache_mock_data.json``: insert every ``origin``, query every
   ``similar``; a hit is correct when it returns the query's own origin, wrong otherwise.
2. A QQP stream from ``qqp_dev.jsonl.gz`` (component-split test side, never trained on): insert
   ``a`` of each pair, query ``b``. A hit on the query's own ``a`` is correct when the pair is a
   duplicate; any other hit is wrong; for a non-duplicate the right outcome is a miss.

GPTCache is not a sidecache dependency; install it for this script only (it would otherwise
pip-install SQLAlchemy by itself on first use)::

    pip install gptcache==0.1.44 sqlalchemy
    python benchmarks/vs_gptcache.py                  # both protocols
    python benchmarks/vs_gptcache.py --qqp-pairs 1000 --backend onnx
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import hashlib
import json
import logging
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import pairs
from report import add_save_flag, results_dir

GPTCACHE_THRESHOLDS = (0.95, 0.90, 0.80)


@dataclass
class Outcome:
    system: str
    setting: str
    correct: int = 0
    wrong: int = 0
    misses: int = 0
    correct_misses: int = 0
    wrong_same_text: int = 0
    latencies: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {
            "system": self.system,
            "setting": self.setting,
            "correct_hits": self.correct,
            "wrong_hits": self.wrong,
            "misses": self.misses,
            "correct_misses": self.correct_misses,
            "wrong_hits_same_text": self.wrong_same_text,
            "lookup_ms_mean": 1000 * statistics.fmean(lat) if lat else math.nan,
            "lookup_ms_p50": 1000 * lat[len(lat) // 2] if lat else math.nan,
            "lookup_ms_p95": 1000 * lat[int(len(lat) * 0.95)] if lat else math.nan,
        }


@dataclass
class Workload:
    """What to insert (text -> answer id) and what to ask (text, the right answer id or None)."""

    name: str
    inserts: list[tuple[str, str]]
    queries: list[tuple[str, str | None]]
    texts: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.texts = {answer: _normal(text) for text, answer in self.inserts}

    def judge(self, out: Outcome, expected: str | None, got: str | None) -> None:
        if got is None:
            if expected is None:
                out.correct_misses += 1
            out.misses += 1
        elif got == expected:
            out.correct += 1
        else:
            out.wrong += 1
            if expected is not None and self.texts.get(got) == self.texts.get(expected):
                # the stored text is the expected one's, word for word, under another id
                # (GPTCache's mock data holds 35 such repeats): no cache can tell them apart
                out.wrong_same_text += 1


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def mock_workload() -> Workload:
    data = json.loads(pairs.GPTCACHE_MOCK_PATH.read_text())
    return Workload(
        "gptcache mock_data",
        [(d["origin"], str(i)) for i, d in enumerate(data)],
        [(d["similar"], str(i)) for i, d in enumerate(data)],
    )


def qqp_workload(n: int) -> Workload:
    ps = pairs.load_pairs(pairs.QQP_PATH, split="test")
    seen: dict[str, str] = {}
    inserts: list[tuple[str, str]] = []
    queries: list[tuple[str, str | None]] = []
    for a, b, y in zip(ps.a, ps.b, ps.label, strict=True):
        if len(queries) >= n:
            break
        if b in seen or b == a:
            continue  # keep each query text out of the stored set
        if a not in seen:
            seen[a] = str(len(inserts))
            inserts.append((a, seen[a]))
        queries.append((b, seen[a] if y == 1 else None))
    stored = {t for t, _ in inserts}
    queries = [(q, e) for q, e in queries if q not in stored]
    return Workload(f"QQP stream (test split, {len(queries)} queries)", inserts, queries)


# --- GPTCache ------------------------------------------------------------------------------------


def run_gptcache(
    wl: Workload, encode: Callable[[str], np.ndarray], workdir: Path, thresholds: tuple[float, ...]
) -> list[Outcome]:
    from gptcache import Cache, Config
    from gptcache.adapter.api import get, put
    from gptcache.manager import CacheBase, VectorBase, get_data_manager
    from gptcache.processor.pre import get_prompt
    from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation

    d = workdir / "gptcache"
    d.mkdir(parents=True, exist_ok=True)
    cache = Cache()
    dm = get_data_manager(
        CacheBase("sqlite", sql_url=f"sqlite:///{d / 'gptcache.db'}"),
        VectorBase("faiss", dimension=384, index_path=str(d / "faiss.index")),
        max_size=1_000_000,
    )
    cache.init(
        pre_embedding_func=get_prompt,
        embedding_func=lambda data, **_: encode(data),
        data_manager=dm,
        similarity_evaluation=SearchDistanceEvaluation(),
        config=Config(similarity_threshold=thresholds[0]),
    )
    for text, answer in wl.inserts:
        put(text, answer, cache_obj=cache)
    outs = []
    for t in thresholds:
        cache.config.similarity_threshold = t
        out = Outcome("GPTCache 0.1.44", f"threshold {t:.2f} (cosine >= {2 * t - 1:.2f})")
        for text, expected in wl.queries:
            t0 = time.perf_counter()
            got = get(text, cache_obj=cache)
            out.latencies.append(time.perf_counter() - t0)
            wl.judge(out, expected, got)
        outs.append(out)
    return outs


# --- sidecache -----------------------------------------------------------------------------------


class _SharedEncoder:
    """Sidecache's Embedder protocol over the same loaded model GPTCache uses."""

    name = "all-MiniLM-L6-v2 (shared)"
    dim = 384

    def __init__(self, encode_many: Callable[[list[str]], np.ndarray]) -> None:
        self._encode = encode_many

    def encode(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)


async def run_sidecache(
    wl: Workload,
    encode_many: Callable[[list[str]], np.ndarray],
    workdir: Path,
    settings: list[tuple[str, float, bool]],
    backend: str,
) -> list[Outcome]:
    from sidecache.cache.policy import Decision, normalise_key
    from sidecache.cache.semantic import SemanticCache
    from sidecache.config import CacheConfig

    verifier = pairs.load_verifier(backend=backend)
    cfg = CacheConfig(sweep_interval_seconds=0, max_entries=1_000_000)
    cache = SemanticCache(cfg, workdir / "sidecache", embedder=_SharedEncoder(encode_many))
    await cache.start()
    scope = "bench"

    def decision(text: str) -> Decision:
        key = normalise_key(text)
        return Decision(
            read=True,
            write=True,
            scope=scope,
            key_text=text,
            key_hash=hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest(),
        )

    for text, answer in wl.inserts:
        await cache.put(
            decision(text),
            {"answer": answer},
            tenant="bench",
            model="bench",
        )
    await cache.wait_writes()
    await cache.wait_rebuilds()

    def verify(new: str, stored: str, sim: float, qvec: np.ndarray, cvec: np.ndarray) -> bool:
        # the cache hands over the query's vector and the stored entry's: no extra embedding
        return verifier.check(new, stored, sim, qvec=qvec, cvec=cvec)

    outs = []
    for label, threshold, use_verifier in settings:
        out = Outcome("sidecache", label)
        for text, expected in wl.queries:
            t0 = time.perf_counter()
            hit = await cache.lookup(
                decision(text), threshold=threshold, verify=verify if use_verifier else None
            )
            out.latencies.append(time.perf_counter() - t0)
            got = None if hit is None else hit.response()["answer"]
            wl.judge(out, expected, got)
        outs.append(out)
    await cache.aclose()
    return outs


def print_table(title: str, rows: list[dict[str, Any]], n_queries: int) -> None:
    print(f"\n{title}: {n_queries} queries")
    print(
        f"{'system':<16} {'setting':<42} {'correct':>8} {'wrong':>6} {'same text':>10}"
        f" {'misses':>7} {'ms mean':>8} {'ms p50':>7}"
    )
    for r in rows:
        print(
            f"{r['system']:<16} {r['setting']:<42} {r['correct_hits']:>8} {r['wrong_hits']:>6}"
            f" {r['wrong_hits_same_text']:>10} {r['misses']:>7} {r['lookup_ms_mean']:>8.2f}"
            f" {r['lookup_ms_p50']:>7.2f}"
        )
    print("(same text: wrong hits whose stored text equals the expected one's, under another id)")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--backend", default="onnx", choices=["torch", "onnx"])
    ap.add_argument("--qqp-pairs", type=int, default=2000, help="QQP stream length (0: skip)")
    ap.add_argument("--skip-mock", action="store_true")
    ap.add_argument(
        "--recommended",
        type=float,
        default=None,
        help="sidecache's own cosine threshold to add (default: from the last sweep)",
    )
    add_save_flag(ap)
    args = ap.parse_args()
    try:
        import gptcache  # noqa: F401
    except ImportError:
        print(
            "GPTCache is not installed. It is not a sidecache dependency; for this benchmark:\n"
            "    pip install gptcache==0.1.44"
        )
        return
    logging.getLogger("gptcache").setLevel(logging.WARNING)

    encode_many = pairs.make_encoder(args.backend)

    def encode_one(text: str) -> np.ndarray:
        return encode_many([text])[0]

    settings = [
        (f"cosine >= {2 * t - 1:.2f} + verifier", 2 * t - 1, True) for t in GPTCACHE_THRESHOLDS
    ]
    settings += [
        (f"cosine >= {2 * t - 1:.2f}, verifier off", 2 * t - 1, False) for t in GPTCACHE_THRESHOLDS
    ]
    if args.recommended is not None:
        settings.append(
            (f"cosine >= {args.recommended:.2f} + verifier (recommended)", args.recommended, True)
        )

    workloads = []
    if not args.skip_mock:
        workloads.append(mock_workload())
    if args.qqp_pairs:
        workloads.append(qqp_workload(args.qqp_pairs))
    report: dict[str, Any] = {"backend": args.backend}
    for wl in workloads:
        workdir = Path(tempfile.mkdtemp(prefix="vs_gptcache_"))
        # GPTCache flushes its FAISS file from an atexit hook registered when it is initialised;
        # hooks run last-registered-first, so this removal (registered before) runs after it
        atexit.register(shutil.rmtree, workdir, True)
        t0 = time.perf_counter()
        g = run_gptcache(wl, encode_one, workdir, GPTCACHE_THRESHOLDS)
        s = asyncio.run(run_sidecache(wl, encode_many, workdir, settings, args.backend))
        rows = [o.row() for o in g + s]
        print_table(wl.name, rows, len(wl.queries))
        print(f"({time.perf_counter() - t0:.0f}s)")
        report[wl.name] = {"queries": len(wl.queries), "inserts": len(wl.inserts), "rows": rows}
    out = results_dir(args.save) / f"vs_gptcache_{args.backend}.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
