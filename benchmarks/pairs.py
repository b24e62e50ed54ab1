"""Shared helpers for the verifier benchmarks: load labeled pairs, split them, embed them once.

Three input formats are understood, picked from the file's content rather than its name:

- our prompt pairs (``benchmarks/data/prompt_pairs.jsonl``): ``{"a", "b", "label", "category",
  "split"}`` one object a line (without ``split`` but with ``domain``, as in
  ``dev_pairs_v2.jsonl``: split into a ``tune`` and a ``check`` half by domain,
  :func:`domain_half`);
- QQP as shipped in ``../shared/data/qqp_dev.jsonl.gz``: ``{"a", "b", "label"}`` a line;
- GPTCache's ``mock_data.json``: a JSON list of ``{"origin", "similar"}`` (positives only; the
  benchmarks run it as a retrieval task, every ``origin`` stored and every ``similar`` queried).

QQP has no split of its own, so :func:`component_split` builds one by connected component of
questions: a question never sits in both train and test, otherwise a verifier could memorise it.
The split hashes each component's smallest question, so it is the same on every machine and for
every ``--limit``.

Embeddings are the expensive part (about 100,000 QQP questions take minutes on two cores), so
:func:`embed_texts` keeps them under ``benchmarks/.cache/`` keyed by the embedder (the shipped
model's file digest, or the model folder and adapter) and text content; a second sweep over the
same file takes seconds.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
QQP_PATH = SHARED_DATA / "qqp_dev.jsonl.gz"
GPTCACHE_MOCK_PATH = SHARED_DATA / "gptcache_mock_data.json"
PROMPT_PAIRS_PATH = ROOT / "benchmarks" / "data" / "prompt_pairs.jsonl"
GENERATED_PAIRS_PATH = ROOT / "benchmarks" / "data" / "generated_pairs.jsonl"
DEV_PAIRS_PATH = ROOT / "benchmarks" / "data" / "dev_pairs.jsonl"
CACHE_DIR = ROOT / "benchmarks" / ".cache"
RESULTS_DIR = ROOT / "benchmarks" / "results"

# The split of the QQP components, in percent: hash < TEST_PERCENT -> test.
TEST_PERCENT = 30


@dataclass
class PairSet:
    """Labeled text pairs; ``retrieval`` holds GPTCache-style data (all labels 1)."""

    a: list[str]
    b: list[str]
    label: np.ndarray
    category: list[str]
    split: list[str]
    source: str
    retrieval: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.a)

    def subset(self, keep: np.ndarray | Sequence[int]) -> PairSet:
        """The pairs at the given indices (or where a boolean mask is true)."""
        idx = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep)
        return PairSet(
            a=[self.a[i] for i in idx],
            b=[self.b[i] for i in idx],
            label=self.label[idx],
            category=[self.category[i] for i in idx],
            split=[self.split[i] for i in idx],
            source=self.source,
            retrieval=self.retrieval,
            meta={
                k: [v[i] for i in idx] if isinstance(v, list) and len(v) == len(self) else v
                for k, v in self.meta.items()
            },
        )


def concat(*sets: PairSet) -> PairSet:
    """The pairs of several sets, in order (the first set's source and flags)."""
    return PairSet(
        a=[x for ps in sets for x in ps.a],
        b=[x for ps in sets for x in ps.b],
        label=np.concatenate([ps.label for ps in sets]),
        category=[x for ps in sets for x in ps.category],
        split=[x for ps in sets for x in ps.split],
        source=sets[0].source,
        retrieval=sets[0].retrieval,
        meta={"group": [g for ps in sets for g in ps.meta.get("group", [""] * len(ps))]},
    )


def _open_text(path: Path) -> Any:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def stable_percent(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:4], "big") % 100


def domain_half(domain: str) -> str:
    """'tune' or 'check' for a domain: pair files with domains and no split of their own
    (``dev_pairs_v2.jsonl``) are halved by domain, so that what is tuned on one half is
    checked on domains it never saw. A hash of the name, fixed before the pairs were read."""
    return "tune" if stable_percent("half:" + domain) % 2 == 0 else "check"


def component_roots(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """For each pair, the smallest question of its connected component (its component's name)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for x, y in zip(a, b, strict=True):
        rx, ry = find(x), find(y)
        if rx != ry:
            if ry < rx:
                rx, ry = ry, rx
            parent[ry] = rx  # the root is always the smallest string of its component
    return [find(x) for x in a]


def component_split(
    a: Sequence[str], b: Sequence[str], test_percent: int = TEST_PERCENT
) -> list[str]:
    """'train' or 'test' for each pair so that no question appears in both.

    Union-find over question strings; a component goes to test when the hash of its smallest
    question falls under ``test_percent``.
    """
    return ["test" if stable_percent(r) < test_percent else "train" for r in component_roots(a, b)]


def component_folds(a: Sequence[str], b: Sequence[str], k: int = 5) -> np.ndarray:
    """A fold number in [0, k) for each pair, constant over a connected component."""
    return np.array([stable_percent("fold:" + r) % k for r in component_roots(a, b)])


def load_pairs(path: str | Path, limit: int | None = None, split: str | None = None) -> PairSet:
    """Read a pair file in any of the three formats; ``split`` keeps 'train', 'test' or all.

    ``limit`` is applied after the split, taking an evenly spaced sample so the class balance
    and the categories stay representative.
    """
    path = Path(path)
    with _open_text(path) as fh:
        head = fh.read(1)
        fh.seek(0)
        if head == "[":
            rows = json.load(fh)
            retrieval = True
        else:
            rows = [json.loads(line) for line in fh if line.strip()]
            retrieval = False
    if retrieval:
        ps = PairSet(
            a=[r["origin"] for r in rows],
            b=[r["similar"] for r in rows],
            label=np.ones(len(rows), dtype=np.int8),
            category=["paraphrase"] * len(rows),
            split=["test"] * len(rows),
            source=str(path),
            retrieval=True,
        )
    else:
        a = [r["a"] for r in rows]
        b = [r["b"] for r in rows]
        if all("split" in r for r in rows):
            splits = [str(r["split"]) for r in rows]
        elif rows and all("domain" in r for r in rows):
            splits = [domain_half(str(r["domain"])) for r in rows]
        else:
            splits = component_split(a, b)
        ps = PairSet(
            a=a,
            b=b,
            label=np.array([int(r["label"]) for r in rows], dtype=np.int8),
            category=[str(r.get("category", "qqp")) for r in rows],
            split=splits,
            source=str(path),
            meta={"group": [str(r.get("domain", "")) for r in rows]},
        )
    if split and split != "all":
        ps = ps.subset(np.array([s == split for s in ps.split]))
    if limit and limit < len(ps):
        ps = ps.subset(np.linspace(0, len(ps) - 1, limit).round().astype(int))
    return ps


# --- embeddings --------------------------------------------------------------------------------


def embedder_config(
    backend: str = "onnx", model_path: str | Path | None = None, adapter: str = "auto"
) -> Any:
    """The ``EmbedderConfig`` the benchmarks embed with (the gateway's defaults otherwise)."""
    from sidecache.config import EmbedderConfig

    return EmbedderConfig(
        backend=backend,  # type: ignore[arg-type]
        model_path=str(model_path) if model_path else "",
        adapter=adapter,
    )


def make_encoder(
    backend: str = "onnx", model_path: str | Path | None = None, adapter: str = "auto"
) -> Callable[[list[str]], np.ndarray]:
    """A function that embeds texts with the gateway's own embedder, normalised float32.

    ``sidecache.cache.embedder.load_embedder`` builds it, so the numbers are the ones the
    gateway sees; ``onnx`` measures the int8 model shipped in the package (a model of your own
    or an adapter is exported under ``benchmarks/.cache``, which needs the torch extra).
    ``model_path`` is a local sentence-transformers folder (``EmbedderConfig.model_path``);
    None: the bundled model. ``adapter`` is ``EmbedderConfig.adapter`` (``auto``: the shipped
    adapter, with the bundled model only; ``none``: the plain model).
    """
    from sidecache.cache.embedder import load_embedder

    data_dir = CACHE_DIR / "sidecache-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    emb = load_embedder(embedder_config(backend, model_path, adapter), data_dir)
    return lambda texts: np.asarray(emb.encode(texts), dtype=np.float32)


def load_verifier(path: str | None = None, backend: str = "onnx") -> Any:
    """The hit verifier as the gateway runs it next to this embedder (``Verifier.for_embedder``:
    a projection trained on other vectors is ignored)."""
    from sidecache.cache.embedder import vectors_id
    from sidecache.cache.verifier import Verifier

    return Verifier.load(path).for_embedder(vectors_id(embedder_config(backend)))


def _file_digest(files: Sequence[tuple[str, Path]]) -> str:
    h = hashlib.sha1()
    for name, f in files:
        h.update(name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def cache_key(backend: str, model_path: str | Path | None = None, adapter: str = "auto") -> str:
    """The name the vectors of an embedder configuration are cached under.

    The bundled model run by torch is ``torch``; the shipped int8 model is ``onnx+m<hash>`` of
    its file (from its manifest), so a rebuilt model never reuses stale vectors, nor the files
    of the dynamic-int8 export it replaced (``emb-onnx-b16-*``). Another model folder adds
    ``+<hash>`` of its configuration and weights, an adapter adds ``+a<hash>`` of its file, so a
    retrained model or adapter never reuses stale vectors either.
    """
    from sidecache.cache.embedder import resolve_adapter

    key = backend
    if backend == "onnx" and not model_path:
        from sidecache.cache.bundled import MODEL_FILE, manifest

        key += "+m" + manifest().files[MODEL_FILE].sha256[:12]
    if model_path:
        folder = Path(model_path)
        files = [
            (str(f.relative_to(folder)), f)
            for f in sorted(folder.rglob("*"))
            if f.is_file() and f.suffix in {".json", ".safetensors", ".bin"}
        ]
        key += "+" + _file_digest(files)
    adapter_file = resolve_adapter(embedder_config(backend, model_path, adapter))
    if adapter_file is not None:
        key += "+a" + _file_digest([("adapter", adapter_file)])
    return key


def _load_store(key_name: str) -> dict[str, np.ndarray]:
    """Every vector already computed for ``key_name``, keyed by text."""
    store: dict[str, np.ndarray] = {}
    for fn in sorted(CACHE_DIR.glob(f"emb-{key_name}-*.npy")):
        names = fn.with_suffix(".json")
        if not names.exists():
            continue
        texts = json.loads(names.read_text(encoding="utf-8"))
        vecs = np.load(fn, mmap_mode="r")
        if len(texts) != len(vecs):
            continue
        for t, i in zip(texts, range(len(texts)), strict=True):
            store[t] = vecs[i]
    return store


def embed_texts(
    texts: Sequence[str],
    backend: str = "onnx",
    encoder: Callable[[list[str]], np.ndarray] | None = None,
    chunk: int = 64,
    progress: bool = True,
    model_path: str | Path | None = None,
    adapter: str = "auto",
) -> np.ndarray:
    """Embeddings of ``texts`` (row i for text i), computed once and kept on disk.

    Vectors are looked up in every cache file of the embedder, so a ``--limit`` run reuses a
    full run's work; only texts never seen are embedded, then saved as one more cache file.

    Texts go to the model ``chunk`` at a time. The batch size does not change the vectors: the
    shipped model's activation scales are fixed, so a text embeds the same alone or in any
    batch (the dynamic-int8 export it replaced did not, and its vectors were cached per batch
    size). A model of your own or an adapter is exported with dynamic int8 at start, as the
    gateway does, so its vectors still move slightly with the batch: they are embedded in
    batches of the gateway's ``embedder.max_batch`` to match what it serves.
    ``model_path`` and ``adapter`` pick the model as in :func:`make_encoder` (each
    configuration is cached apart, see :func:`cache_key`).
    """
    from sidecache.cache.embedder import needs_torch

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    key_name = cache_key(backend, model_path, adapter)
    cfg = embedder_config(backend, model_path, adapter)
    if backend == "onnx" and needs_torch(cfg) is not None:  # a start-time export: dynamic int8
        chunk = cfg.max_batch
    store = _load_store(key_name)
    missing = sorted(set(texts) - store.keys())
    if missing:
        enc = encoder or make_encoder(backend, model_path, adapter)
        from tqdm import tqdm

        parts = []
        t0 = time.perf_counter()
        with tqdm(
            total=len(missing), desc=f"embedding ({key_name})", unit="text", disable=not progress
        ) as bar:
            for i in range(0, len(missing), chunk):
                parts.append(enc(list(missing[i : i + chunk])))
                bar.update(min(chunk, len(missing) - i))
        vecs = np.concatenate(parts).astype(np.float32)
        key = hashlib.sha1("\n".join(missing).encode("utf-8")).hexdigest()[:16]
        fn = CACHE_DIR / f"emb-{key_name}-{key}.npy"
        np.save(fn, vecs)
        fn.with_suffix(".json").write_text(json.dumps(missing), encoding="utf-8")
        print(
            f"embedded {len(missing)} texts in {time.perf_counter() - t0:.1f}s -> {fn}",
            file=sys.stderr,
        )
        for t, v in zip(missing, vecs, strict=True):
            store[t] = v
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.stack([store[t] for t in texts]).astype(np.float32)


def embed_pairs(
    ps: PairSet,
    backend: str = "onnx",
    model_path: str | Path | None = None,
    adapter: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors for both sides of every pair (one embedding pass over the unique texts)."""
    allv = embed_texts(ps.a + ps.b, backend=backend, model_path=model_path, adapter=adapter)
    return allv[: len(ps)], allv[len(ps) :]
