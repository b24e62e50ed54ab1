"""Synthetic but realistic vectors for the scale benchmark (``benchmarks/scale.py``).

A million distinct prompts cannot be embedded on a laptop in reasonable time, and random unit
vectors are the wrong geometry (isotropic noise in 384 dimensions: the hardest possible case for
a graph index, and nothing like sentence embeddings). So: ``BASE`` prompts are made from
templates and embedded once by the gateway's own embedder (cached under ``.cache/scale``), and
entry ``i`` is ``normalise(b[j] + 0.5 * b[k] + noise)`` for two base prompts ``j, k``: points on
the embeddings' own manifold, related to each other as questions on one topic are (cosine about
0.8 between entries sharing ``j``). A query is an entry moved to cosine about 0.95 from it, as a
paraphrase is; its exact best match is that entry, with related ones a little further.
"""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

CACHE = Path(__file__).resolve().parent / ".cache" / "scale"
BASE = 20_000
"""At most this many base prompts (the templates make about 8,000)."""
DIM = 384
MIX = 0.5
NOISE = 0.02
"""Per-dimension noise of an entry (norm about 0.4 in 384 dimensions)."""
QUERY_NOISE = 0.0165
"""Per-dimension noise of a query: cosine about 0.95 with the entry it paraphrases."""

_VERBS = (
    "reverse sort merge split parse validate cache index compress encrypt format deploy".split()
)
_OBJECTS = (
    "a list|a dictionary|a string|a CSV file|a JSON document|a date|a URL|an image|a log file"
    "|a database table|a web page|an API response|a config file|a zip archive|a PDF"
).split("|")
_TECH = "Python|JavaScript|Go|Rust|Java|SQL|Bash|Excel|Kotlin|C#|Ruby|PHP|Swift|R".split("|")
_ENTITIES = (
    "France|Japan|Brazil|Kenya|Canada|the Moon|Mars|the Amazon river|Mount Everest|the Sahara"
    "|the Pacific Ocean|Jupiter|the Nile|Iceland|Peru|Norway|Egypt|India|Australia|Chile"
).split("|")
_ATTRIBUTES = "capital|population|area|climate|history|currency|highest point|main export".split(
    "|"
)
_CONCEPTS = (
    "recursion|inflation|photosynthesis|compound interest|machine learning|entropy|supply and"
    " demand|vaccination|blockchain|gravity|plate tectonics|the immune system|neural networks"
    "|quantum entanglement|game theory|natural selection|tax brackets|mortgages|encryption"
).split("|")
_AUDIENCES = "a child|a beginner|an engineer|a manager|a student|my grandmother|an expert".split(
    "|"
)
_FORMATS = "short poem|haiku|summary|email|tweet|cover letter|limerick|product description".split(
    "|"
)
_TOPICS = (
    "autumn|remote work|coffee|a product launch|climate change|friendship|the ocean|a job"
    " interview|space travel|a birthday|public transport|healthy eating|a team offsite"
).split("|")


def base_prompts(n: int = BASE, seed: int = 7) -> list[str]:
    """Up to ``n`` distinct template prompts (shuffled deterministically)."""
    pools = [
        (f"How do I {v} {o} in {t}?" for v, o, t in itertools.product(_VERBS, _OBJECTS, _TECH)),
        (f"What is the {a} of {e}?" for a, e in itertools.product(_ATTRIBUTES, _ENTITIES)),
        (
            f"Explain {c} to {a} in {k} sentences."
            for c, a, k in itertools.product(_CONCEPTS, _AUDIENCES, ("two", "three", "five"))
        ),
        (
            f"Write a {f} about {t} for {a}."
            for f, t, a in itertools.product(_FORMATS, _TOPICS, _AUDIENCES)
        ),
        (
            f"Compare {a} and {b} for {o}."
            for a, b, o in itertools.product(_TECH, _TECH, ("parsing", "web servers", "scripts"))
            if a < b
        ),
    ]
    prompts = sorted({p for pool in pools for p in pool})
    random.Random(seed).shuffle(prompts)
    return prompts[:n]


def base_vectors(onnx_dir: Path | None = None) -> npt.NDArray[np.float32]:
    """The embeddings of ``base_prompts()``, made once with the gateway's ONNX embedder."""
    path = CACHE / f"base-{len(base_prompts())}.npy"
    if path.exists():
        return np.load(path)
    from sidecache.cache.embedder import load_embedder
    from sidecache.config import EmbedderConfig

    CACHE.mkdir(parents=True, exist_ok=True)
    cfg = EmbedderConfig(onnx_dir=str(onnx_dir) if onnx_dir else "", threads=0)
    embedder = load_embedder(cfg, CACHE / "data")
    prompts = base_prompts()
    t0 = time.perf_counter()
    rows = [embedder.encode(prompts[i : i + 64]) for i in range(0, len(prompts), 64)]
    vecs = np.ascontiguousarray(np.vstack(rows), dtype=np.float32)
    print(f"embedded {len(prompts)} base prompts in {time.perf_counter() - t0:.0f}s")
    np.save(path, vecs)
    return vecs


def _unit(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def entries(base: npt.NDArray[np.float32], n: int, seed: int = 1) -> npt.NDArray[np.float32]:
    """``n`` entry vectors (row ``i`` is the same for every ``n``: sizes nest)."""
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        rng = np.random.default_rng(seed * 1_000_003 + start)
        j = rng.integers(0, len(base), stop - start)
        k = rng.integers(0, len(base), stop - start)
        noise = rng.standard_normal((stop - start, base.shape[1])).astype(np.float32) * NOISE
        out[start:stop] = _unit(base[j] + MIX * base[k] + noise)
    return out


def queries(
    vecs: npt.NDArray[np.float32], count: int, seed: int = 2
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """``count`` paraphrase-like queries: (the entry each was made from, the query vectors)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, len(vecs), count)
    noise = rng.standard_normal((count, vecs.shape[1])).astype(np.float32) * QUERY_NOISE
    return ids.astype(np.int64), _unit(vecs[ids] + noise)
