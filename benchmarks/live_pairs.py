"""Labelled prompt pairs through a live gateway: what a user would actually be served.

For each pair ``(a, b, label)`` the benchmark sends ``a`` (a miss: the answer is stored), then
``b``, and records whether ``b`` was served from the cache (``x-sidecache: hit-*``). Every pair
runs in a namespace of its own (``x-sidecache-namespace``), so pairs never see each other's
entries, exactly as if each were the only thing in the cache. The gateway runs as shipped: the
default threshold and the shipped verifier unless ``--threshold`` or ``--config-extra`` say
otherwise. Nothing is tuned here; it only counts.

Prints, per category, how many pairs were served, and overall precision (served pairs that are
true paraphrases) and recall (true paraphrases served). Pair files are JSON lines
``{"a", "b", "label", "category"?}``, e.g. ``benchmarks/data/prompt_pairs.jsonl``.

    python benchmarks/live_pairs.py PAIRS.jsonl [--threshold 0.9] [--split check] [--save]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pairs import domain_half  # noqa: E402
from report import add_save_flag, results_dir  # noqa: E402
from support import Gateway, basic_config, start_upstream, write_config  # noqa: E402


def load(path: Path, split: str | None = None) -> list[dict]:
    """The pairs of a file; ``split`` keeps one split (a row's ``split``, else the half of its
    ``domain``: ``pairs.domain_half``)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for r in rows:
        r.setdefault("category", "paraphrase" if r["label"] else "negative")
    if split:
        rows = [r for r in rows if r.get("split", domain_half(r.get("domain", ""))) == split]
    return rows


async def run_pairs(gw: Gateway, rows: list[dict], threshold: float | None, conc: int) -> list[str]:
    headers = {} if threshold is None else {"x-sidecache-threshold": str(threshold)}
    sem = asyncio.Semaphore(conc)
    out = [""] * len(rows)

    async def one(i: int, row: dict, client: httpx.AsyncClient) -> None:
        ns = {"x-sidecache-namespace": "p" + uuid.uuid4().hex[:12], **headers}
        async with sem:
            for text in (row["a"], row["b"]):
                body = {"model": "m1", "messages": [{"role": "user", "content": text}]}
                r = await client.post("/v1/chat/completions", json=body, headers=ns)
                r.raise_for_status()
            out[i] = r.headers["x-sidecache"]

    async with httpx.AsyncClient(base_url=gw.url, timeout=60, trust_env=False) as client:
        await asyncio.gather(*(one(i, row, client) for i, row in enumerate(rows)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("pairs", type=Path)
    ap.add_argument("--threshold", type=float, help="per-request threshold (default: the config's)")
    ap.add_argument("--config-extra", default="", help="lines added inside [cache]")
    ap.add_argument(
        "--split",
        help="only this split: a row's split field, else the half of its domain (tune, check)",
    )
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--name", help="results file name (default: live_<pairs file stem>)")
    add_save_flag(ap)
    args = ap.parse_args()

    rows = load(args.pairs, args.split)
    up = start_upstream("u1")
    tmp = Path(tempfile.mkdtemp(prefix="sidecache-live-"))
    config = basic_config([up], tmp, cache=True, cache_extra=args.config_extra)
    gw = Gateway(write_config(tmp, config), log_path=tmp / "gateway.log").start()
    t0 = time.perf_counter()
    try:
        outcomes = asyncio.run(run_pairs(gw, rows, args.threshold, args.concurrency))
    finally:
        gw.stop()
        up.close()
    elapsed = time.perf_counter() - t0

    served = Counter()
    total = Counter()
    for row, outcome in zip(rows, outcomes, strict=True):
        total[row["category"]] += 1
        if outcome.startswith("hit"):
            served[row["category"]] += 1
    true_hits = sum(
        1 for r, o in zip(rows, outcomes, strict=True) if o.startswith("hit") and r["label"]
    )
    false_hits = sum(
        1 for r, o in zip(rows, outcomes, strict=True) if o.startswith("hit") and not r["label"]
    )
    positives = sum(1 for r in rows if r["label"])
    precision = true_hits / (true_hits + false_hits) if true_hits + false_hits else 1.0
    recall = true_hits / positives if positives else 0.0

    setting = f"threshold {args.threshold}" if args.threshold is not None else "default settings"
    part = f", split {args.split}" if args.split else ""
    print(f"\n{args.pairs.name}{part}: {len(rows)} pairs through a live gateway ({setting})\n")
    print(f"{'category':<14}{'served':>8}{'of':>6}{'share':>8}")
    for cat in sorted(total):
        print(f"{cat:<14}{served[cat]:>8}{total[cat]:>6}{served[cat] / total[cat]:>8.3f}")
    print(
        f"\nprecision {precision:.3f}, paraphrase recall {recall:.3f} ({true_hits} true, "
        f"{false_hits} false hits); {elapsed:.0f} s"
    )
    doc = {
        "benchmark": "live_pairs",
        "pairs": str(args.pairs.name),
        "split": args.split,
        "setting": setting,
        "config_extra": args.config_extra,
        "served": dict(served),
        "total": dict(total),
        "precision": precision,
        "recall": recall,
        "true_hits": true_hits,
        "false_hits": false_hits,
    }
    default_name = "live_" + args.pairs.stem + (f"_{args.split}" if args.split else "")
    path = results_dir(args.save) / f"{args.name or default_name}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
