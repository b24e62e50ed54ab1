"""Sweep the semantic-cache threshold on labeled pairs, with and without the hit verifier.

Input: our prompt pairs (JSONL), QQP (JSONL or .jsonl.gz) or GPTCache's ``{origin, similar}``
JSON (run as retrieval: every ``origin`` stored, every ``similar`` queried against all of them).

For each cosine threshold it prints precision, recall, F1, hit rate and false-hit rate, for plain
cosine and for cosine + verifier (at the verifier's shipped cutoff), then recommends:

- the threshold that maximises recall at ``--target-precision`` with the verifier off and on;
- the best (threshold, verifier cutoff) pair, since the learned score can do most of the work.

Definitions (pair files): a pair is *served* when cosine >= threshold and, with the verifier on,
the verifier accepts it. precision = served positives / served; recall = served positives /
positives; hit rate = served / pairs; false-hit rate = served negatives / negatives.
Retrieval files: correct hit = the query's own origin served; wrong hit = another origin served
(of the candidates that pass, near ties on cosine go to the closest wording, as in the gateway:
``sidecache.cache.ranking``);
precision = correct / (correct + wrong); recall = correct / queries; false-hit rate = wrong /
queries.

Writes ``<name>.json`` and ``<name>.png`` (precision-recall curves, verifier on vs off) under
``benchmarks/.cache/results/``, or under ``benchmarks/results/`` with ``--save``. Embeddings are
cached under ``benchmarks/.cache`` so a second run takes seconds.

    python benchmarks/threshold_sweep.py ../shared/data/qqp_dev.jsonl.gz --split test
    python benchmarks/threshold_sweep.py benchmarks/data/prompt_pairs.jsonl --split test
    python benchmarks/threshold_sweep.py ../shared/data/gptcache_mock_data.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import pairs
from report import add_save_flag, results_dir

from sidecache.cache.ranking import choose, surface_similarity
from sidecache.cache.semantic import SEARCH_K

DEFAULT_THRESHOLDS = tuple(round(x, 2) for x in np.arange(0.50, 0.991, 0.01))
DEFAULT_CUTOFFS = tuple(round(x, 2) for x in np.arange(0.05, 0.991, 0.01))
TOP_K = SEARCH_K  # candidates per query, as the gateway


@dataclass
class Row:
    threshold: float
    cutoff: float | None
    precision: float
    recall: float
    f1: float
    hit_rate: float
    false_hit_rate: float
    served: int
    correct: int
    wrong: int


@dataclass
class SweepData:
    """Everything the sweep needs, computed once: cosines and verifier scores."""

    name: str
    retrieval: bool
    n: int
    n_pos: int
    n_neg: int
    cos: np.ndarray  # pairs: (n,); retrieval: (n, k) best-first
    score: np.ndarray  # verifier score, same shape
    label: np.ndarray  # pairs: (n,) 0/1; retrieval: (n, k) 1 where the candidate is the right one
    surface: np.ndarray  # retrieval: (n, k) wording overlap with the query (near ties); pairs: (0,)
    shipped_cutoff: float
    category: list[str]


def prepare(
    path: str | Path,
    split: str | None = None,
    limit: int | None = None,
    backend: str = "onnx",
    verifier_path: str | None = None,
    progress: bool = True,
    use_vectors: bool = True,
) -> SweepData:
    """Load a pair file, embed it (cached) and score every candidate pair with the verifier."""
    from tqdm import tqdm

    ver = pairs.load_verifier(verifier_path, backend)
    ps = pairs.load_pairs(path, limit=limit, split=split)
    name = Path(path).name.split(".")[0] + (f"_{split}" if split and split != "all" else "")
    if limit:
        name += f"_n{limit}"
    if ps.retrieval:
        vo = pairs.embed_texts(ps.a, backend=backend, progress=progress)
        vq = pairs.embed_texts(ps.b, backend=backend, progress=progress)
        sims = vq @ vo.T
        k = min(TOP_K, len(ps))
        idx = np.argsort(-sims, axis=1)[:, :k]
        cos = np.take_along_axis(sims, idx, axis=1)
        label = (idx == np.arange(len(ps))[:, None]).astype(np.int8)
        surface = np.array(
            [[surface_similarity(ps.b[i], ps.a[int(o)]) for o in idx[i]] for i in range(len(ps))]
        )
        score = np.zeros_like(cos)
        for i in tqdm(range(len(ps)), desc="verifier", disable=not progress, leave=False):
            for j in range(k):
                o = int(idx[i, j])
                score[i, j] = ver.score(
                    ps.b[i], ps.a[o], float(cos[i, j]), *((vq[i], vo[o]) if use_vectors else ())
                )
        n_pos, n_neg = len(ps), 0
    else:
        va, vb = pairs.embed_pairs(ps, backend=backend)
        cos = np.einsum("ij,ij->i", va, vb)
        label = ps.label.astype(np.int8)
        surface = np.zeros(0)
        score = np.array(
            [
                ver.score(ps.b[i], ps.a[i], float(cos[i]), *((vb[i], va[i]) if use_vectors else ()))
                for i in tqdm(range(len(ps)), desc="verifier", disable=not progress, leave=False)
            ]
        )
        n_pos, n_neg = int(label.sum()), int(len(label) - label.sum())
    return SweepData(
        name=name,
        retrieval=ps.retrieval,
        n=len(ps),
        n_pos=n_pos,
        n_neg=n_neg,
        cos=cos,
        score=score,
        label=label,
        surface=surface,
        shipped_cutoff=ver.cutoff,
        category=ps.category,
    )


def evaluate(d: SweepData, threshold: float, cutoff: float | None) -> Row:
    """One operating point; ``cutoff=None`` means the verifier is off."""
    ok = d.cos >= threshold
    if cutoff is not None:
        ok = ok & (d.score >= cutoff)
    if d.retrieval:
        served = correct = 0
        for i in np.flatnonzero(ok.any(axis=1)):  # as the gateway serves: near ties by wording
            cand = np.flatnonzero(ok[i])
            pick = cand[choose(d.cos[i, cand].tolist(), lambda j, i=i, c=cand: d.surface[i, c[j]])]
            served += 1
            correct += int(d.label[i, pick] == 1)
        wrong = served - correct
        recall = correct / max(d.n, 1)
        false_hit = wrong / max(d.n, 1)
    else:
        served = int(ok.sum())
        correct = int((ok & (d.label == 1)).sum())
        wrong = served - correct
        recall = correct / max(d.n_pos, 1)
        false_hit = wrong / max(d.n_neg, 1)
    precision = correct / served if served else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Row(
        threshold=float(threshold),
        cutoff=None if cutoff is None else float(cutoff),
        precision=precision,
        recall=recall,
        f1=f1,
        hit_rate=served / max(d.n, 1),
        false_hit_rate=false_hit,
        served=served,
        correct=correct,
        wrong=wrong,
    )


def category_rates(d: SweepData, threshold: float, cutoff: float | None) -> dict[str, Any]:
    """Pairs served per category (pair files with categories): paraphrases served are hits,
    anything else served is a hard negative let through."""
    ok = d.cos >= threshold
    if cutoff is not None:
        ok = ok & (d.score >= cutoff)
    cats = np.array(d.category)
    return {
        str(c): {"served": int(ok[cats == c].sum()), "pairs": int((cats == c).sum())}
        for c in sorted(set(d.category))
    }


def print_categories(d: SweepData, thresholds: list[float], file: Any = sys.stdout) -> None:
    """Per-category served counts at a few thresholds, verifier off and on (shipped cutoff)."""
    for t in thresholds:
        for label, cut in (("off", None), (f"on, cutoff {d.shipped_cutoff:.2f}", d.shipped_cutoff)):
            r = evaluate(d, t, cut)
            per = category_rates(d, t, cut)
            text = ", ".join(f"{c} {v['served']}/{v['pairs']}" for c, v in per.items())
            print(
                f"cosine >= {t:.2f}, verifier {label}: precision {r.precision:.3f}, recall"
                f" {r.recall:.3f}; served {text}",
                file=file,
            )


def sweep(
    d: SweepData,
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS,
    cutoffs: tuple[float, ...] = DEFAULT_CUTOFFS,
    target_precision: float = 0.95,
) -> dict[str, Any]:
    """All operating points and the recommendations, as one JSON-ready dict."""
    off = [evaluate(d, t, None) for t in thresholds]
    on = [evaluate(d, t, d.shipped_cutoff) for t in thresholds]

    def best(rows: list[Row]) -> Row | None:
        ok = [r for r in rows if r.precision >= target_precision and r.served]
        return max(ok, key=lambda r: (r.recall, r.threshold)) if ok else None

    grid = [evaluate(d, t, c) for t in thresholds for c in cutoffs]
    return {
        "data": d.name,
        "retrieval": d.retrieval,
        "pairs": d.n,
        "positives": d.n_pos,
        "negatives": d.n_neg,
        "target_precision": target_precision,
        "shipped_cutoff": d.shipped_cutoff,
        "verifier_off": [asdict(r) for r in off],
        "verifier_on": [asdict(r) for r in on],
        "recommended_off": _asdict(best(off)),
        "recommended_on": _asdict(best(on)),
        "recommended_pair": _asdict(best(grid)),
        "pr_curve_on": _pareto(grid),
    }


def _asdict(r: Row | None) -> dict[str, Any] | None:
    return None if r is None else asdict(r)


def _pareto(rows: list[Row]) -> list[dict[str, Any]]:
    """The best precision reached at each recall over all (threshold, cutoff) pairs."""
    pts = sorted(rows, key=lambda r: (-r.recall, -r.precision))
    out: list[Row] = []
    best_p = -1.0
    for r in pts:
        if r.served and r.precision > best_p:
            out.append(r)
            best_p = r.precision
    return [asdict(r) for r in out]


def print_table(res: dict[str, Any], file: Any = sys.stdout) -> None:
    hdr = (
        f"{'thr':>5} | {'P':>6} {'R':>6} {'F1':>6} {'hit':>6} {'false':>6}"
        f" | {'P':>6} {'R':>6} {'F1':>6} {'hit':>6} {'false':>6}"
    )
    cut = res["shipped_cutoff"]
    print(
        f"\n{res['data']}: {res['pairs']} pairs ({res['positives']} pos / {res['negatives']} neg)",
        file=file,
    )
    print(f"{'':>5} | {'verifier off':^34} | {f'verifier on (cutoff {cut:.2f})':^34}", file=file)
    print(hdr, file=file)
    for a, b in zip(res["verifier_off"], res["verifier_on"], strict=True):
        print(
            f"{a['threshold']:5.2f} | {a['precision']:6.3f} {a['recall']:6.3f} {a['f1']:6.3f}"
            f" {a['hit_rate']:6.3f} {a['false_hit_rate']:6.3f} | {b['precision']:6.3f}"
            f" {b['recall']:6.3f} {b['f1']:6.3f} {b['hit_rate']:6.3f} {b['false_hit_rate']:6.3f}",
            file=file,
        )
    tp = res["target_precision"]
    for key, label in (
        ("recommended_off", "verifier off"),
        ("recommended_on", f"verifier on (cutoff {cut:.2f})"),
        ("recommended_pair", "verifier on, cutoff tuned"),
    ):
        r = res[key]
        if r is None:
            print(f"{label}: no threshold reaches precision {tp}", file=file)
        else:
            c = "" if r["cutoff"] is None else f", cutoff {r['cutoff']:.2f}"
            print(
                f"{label}: threshold {r['threshold']:.2f}{c} -> precision {r['precision']:.3f},"
                f" recall {r['recall']:.3f}, false-hit rate {r['false_hit_rate']:.3f}"
                f" (target precision {tp})",
                file=file,
            )


def plot(res: dict[str, Any], path: str | Path | None = None) -> Any:
    """Precision-recall curves (threshold swept) with the verifier off and on."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    for key, label, style in (
        ("verifier_off", "cosine only", "-"),
        ("verifier_on", f"cosine + verifier (cutoff {res['shipped_cutoff']:.2f})", "-"),
    ):
        rows = res[key]
        ax1.plot([r["recall"] for r in rows], [r["precision"] for r in rows], style, label=label)
        ax2.plot(
            [r["threshold"] for r in rows],
            [r["precision"] for r in rows],
            label=f"precision, {label}",
        )
        ax2.plot(
            [r["threshold"] for r in rows],
            [r["recall"] for r in rows],
            "--",
            label=f"recall, {label}",
        )
    pc = res["pr_curve_on"]
    ax1.plot(
        [r["recall"] for r in pc],
        [r["precision"] for r in pc],
        ":",
        label="verifier, best cutoff per point",
    )
    ax1.axhline(res["target_precision"], color="grey", lw=0.8)
    rec = res["recommended_pair"]
    if rec:
        ax1.plot([rec["recall"]], [rec["precision"]], "o", color="black", label="recommended")
    ax1.set_xlabel("recall")
    ax1.set_ylabel("precision")
    ax1.set_title(f"{res['data']}: precision-recall")
    ax1.legend(fontsize=8)
    ax2.set_xlabel("cosine threshold")
    ax2.set_title("precision / recall by threshold")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def config_snippet(res: dict[str, Any], alias: str | None = None, use_pair: bool = True) -> str:
    """TOML lines for sidecache's config at the recommended operating point.

    Globally: ``[cache] threshold`` and ``[cache.verifier]``; for one alias:
    ``[models.NAME] threshold / verifier`` (the verifier's cutoff is global).
    """
    rec = res["recommended_pair"] if use_pair else res["recommended_on"]
    rec = rec or res["recommended_on"] or res["recommended_off"]
    if rec is None:
        return "# no threshold reaches the target precision on this data: keep the defaults"
    on = rec["cutoff"] is not None
    lines = [
        f"# {res['data']}: precision {rec['precision']:.3f}, recall {rec['recall']:.3f}"
        f" at target precision {res['target_precision']}"
    ]
    if alias:
        lines += [
            f"[models.{alias}]",
            f"threshold = {rec['threshold']:.2f}",
            f"verifier = {str(on).lower()}",
        ]
        if on:
            lines += ["", "[cache.verifier]", f"cutoff = {rec['cutoff']:.2f}"]
    else:
        lines += ["[cache]", f"threshold = {rec['threshold']:.2f}", "", "[cache.verifier]"]
        lines.append(f"enabled = {str(on).lower()}")
        if on:
            lines.append(f"cutoff = {rec['cutoff']:.2f}")
    return "\n".join(lines)


def speed(
    path: str | Path, limit: int = 2000, backend: str = "onnx", verifier_path: str | None = None
) -> dict[str, float]:
    """Per-check latency of ``Verifier.check`` on real pairs (one thread, as the cache calls it).

    Cold: every prompt seen for the first time (the text analysis is computed); warm: the stored
    prompt's analysis already memoised, as it is for entries that get queried again.
    """
    ps = pairs.load_pairs(path, limit=limit)
    va, vb = pairs.embed_pairs(ps, backend=backend)
    cos = np.einsum("ij,ij->i", va, vb)
    out: dict[str, float] = {}
    for label, vecs in (("with_vectors", True), ("without_vectors", False)):
        for state in ("cold", "warm"):
            ver = pairs.load_verifier(verifier_path, backend)
            if state == "warm":
                for a in ps.a:
                    ver.features(a, a, 1.0)
            times = []
            for i in range(len(ps)):
                qv, cv = (vb[i], va[i]) if vecs else (None, None)
                t0 = time.perf_counter()
                ver.check(ps.b[i], ps.a[i], float(cos[i]), qvec=qv, cvec=cv)
                times.append(time.perf_counter() - t0)
            times.sort()
            out[f"{label}_{state}_p50_ms"] = 1000 * times[len(times) // 2]
            out[f"{label}_{state}_p95_ms"] = 1000 * times[int(len(times) * 0.95)]
            out[f"{label}_{state}_max_ms"] = 1000 * times[-1]
    return out


def parse_range(spec: str) -> tuple[float, ...]:
    lo, hi, step = (float(x) for x in spec.split(":"))
    return tuple(round(x, 4) for x in np.arange(lo, hi + step / 2, step))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("data", help="pair file: our JSONL, QQP .jsonl(.gz) or GPTCache mock JSON")
    ap.add_argument("--split", default=None, help="train, test or all (default: all)")
    ap.add_argument("--limit", type=int, default=None, help="evenly spaced sample of N pairs")
    ap.add_argument("--backend", default="onnx", choices=["torch", "onnx"])
    ap.add_argument("--verifier", default=None, help="verifier model file (default: shipped)")
    ap.add_argument("--target-precision", type=float, default=0.95)
    ap.add_argument("--thresholds", default="0.50:0.99:0.01", help="lo:hi:step")
    ap.add_argument("--out", default=None, help="result name (default: from the data file)")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--speed", action="store_true", help="only time Verifier.check on the pairs")
    ap.add_argument(
        "--at",
        default="",
        help="comma-separated thresholds to print per-category served counts at (pair files"
        " with categories; default: the gateway's default threshold)",
    )
    ap.add_argument(
        "--no-vectors", action="store_true", help="verifier without the sentence vectors"
    )
    add_save_flag(ap)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    where = results_dir(args.save)
    if args.speed:
        res = speed(args.data, args.limit or 2000, args.backend, args.verifier)
        for k, v in res.items():
            print(f"{k:32s} {v:7.3f}")
        (where / "verifier_speed.json").write_text(json.dumps(res, indent=1))
        return res
    d = prepare(
        args.data,
        args.split,
        args.limit,
        args.backend,
        args.verifier,
        use_vectors=not args.no_vectors,
    )
    name = args.out or f"sweep_{d.name}_{args.backend}" + ("_novec" if args.no_vectors else "")
    res = sweep(d, parse_range(args.thresholds), target_precision=args.target_precision)
    res["backend"] = args.backend
    print_table(res)
    if not d.retrieval and set(d.category) - {"qqp"}:
        from sidecache.config import CacheConfig

        at = [float(x) for x in args.at.split(",") if x] or [CacheConfig().threshold]
        print()
        print_categories(d, at)
        res["per_category"] = {
            str(t): {
                "verifier_off": category_rates(d, t, None),
                "verifier_on": category_rates(d, t, d.shipped_cutoff),
            }
            for t in at
        }
    out = where / f"{name}.json"
    out.write_text(json.dumps(res, indent=1))
    if not args.no_plot:
        plot(res, where / f"{name}.png")
    print(f"\nwrote {out}{'' if args.no_plot else ' and .png'} in {time.perf_counter() - t0:.1f}s")
    print("\nconfig:\n" + config_snippet(res))
    return res


if __name__ == "__main__":
    main()
