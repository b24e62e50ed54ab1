"""Embedder speed: backend x batch size, the micro-batcher under concurrency, load and export.

Run: ``python benchmarks/embedder_speed.py [--seconds 1.0] [--rounds 3] [--onnx-dir DIR] [--save]``.
Prints tables; ``--save`` also writes ``benchmarks/results/embedder_speed.json``. Each figure is
the best of ``--rounds`` timed rounds, interleaved across backends (the box may be shared; the
best round is the least disturbed one). Prompts are ~15 words, like a typical chat question.

Backends: the int8 model shipped in the package (what the gateway serves by default, static
activation scales), and with the torch extra installed the ones built at start: the dynamic
int8 export (the recipe used for a model of your own), the fp32 export and sentence-transformers
itself. "Start" is what a fresh data directory costs before the first vector: loading the
shipped model, against exporting and quantising (torch extra).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sidecache.cache.batcher import MicroBatcher
from sidecache.cache.embedder import (
    Embedder,
    load_embedder,
    needs_torch,
    require_torch_extra,
    resolve_model_path,
    set_offline,
)
from sidecache.cache.onnx_embedder import OnnxEmbedder, export_onnx
from sidecache.config import EmbedderConfig
from sidecache.errors import ConfigError

SUBJECTS = [
    "my password",
    "a Python list",
    "the kitchen sink",
    "a Docker container",
    "my bike chain",
    "an SQL index",
    "the garden hose",
    "a React component",
]
TEMPLATES = [
    "Could you please explain to me step by step how I should fix {s} when it breaks?",
    "What is the quickest and cheapest way to clean {s} without damaging anything around it?",
    "I am a beginner: what are the most common mistakes people make with {s} and why?",
    "Give me three short tips for keeping {s} in good working order over the next year.",
    "Why does {s} behave differently on weekends, and is there an easy way to check it?",
    "Write a friendly two sentence note reminding my team to take care of {s} this week.",
    "How would an expert describe {s} to a curious ten year old in plain simple words?",
    "Which tools do I need to replace {s} at home, and how long should the job take?",
]
PROMPTS = [t.format(s=s) for t in TEMPLATES for s in SUBJECTS]  # 64 prompts, ~15 words


def time_encode(e: Embedder, batch: int, seconds: float, rnd: int) -> float:
    """Seconds per encode call of ``batch`` prompts, over one timed round."""
    e.encode([PROMPTS[i % len(PROMPTS)] for i in range(batch)])  # warm-up
    offset = rnd * batch
    calls = 0
    t0 = time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds or calls < 3:
        e.encode([PROMPTS[(offset + calls + i) % len(PROMPTS)] for i in range(batch)])
        calls += 1
    return elapsed / calls


async def _concurrent(e: Embedder, callers: int, wait_ms: float, seconds: float) -> dict[str, Any]:
    batcher = MicroBatcher(e, max_batch=32, max_wait_ms=wait_ms)
    batcher.start()
    await batcher.embed("warm up")
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def caller(k: int) -> None:
        i = k
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            await batcher.embed(PROMPTS[i % len(PROMPTS)])
            latencies.append(time.perf_counter() - t0)
            i += callers

    t0 = time.perf_counter()
    await asyncio.gather(*(caller(k) for k in range(callers)))
    elapsed = time.perf_counter() - t0
    stats = batcher.stats()
    await batcher.aclose()
    latencies.sort()
    return {
        "callers": callers,
        "max_wait_ms": wait_ms,
        "prompts_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000,
        "mean_batch": stats["mean_batch"],
    }


def measure_load() -> dict[str, float]:
    """The shipped model from its file to the first vector (in this process: imports are warm)."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        e = load_embedder(EmbedderConfig(), Path(tmp))
        t1 = time.perf_counter()
        e.encode(["warm up"])
        t2 = time.perf_counter()
    return {"shipped_load_s": t1 - t0, "shipped_first_vector_s": t2 - t0}


def measure_export() -> dict[str, float]:
    """Cold export into a fresh directory: trace to fp32, then quantise to int8 (dynamic)."""
    model = resolve_model_path(EmbedderConfig())
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        export_onnx(model, Path(tmp), quantize=False)
        t1 = time.perf_counter()
        export_onnx(model, Path(tmp), quantize=True)
        t2 = time.perf_counter()
        sizes = {p.name.rsplit("-", 1)[-1]: p.stat().st_size for p in Path(tmp).glob("*.onnx")}
    return {
        "fp32_export_s": t1 - t0,
        "int8_quantize_s": t2 - t1,
        "fp32_mb": sizes.get("fp32.onnx", 0) / 2**20,
        "int8_mb": sizes.get("int8.onnx", 0) / 2**20,
    }


def has_torch_extra() -> bool:
    try:
        require_torch_extra("comparing with the start-time exports")
    except ConfigError as exc:
        print(f"{exc}: only the shipped model is measured\n")
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="per timed round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--onnx-dir", default=str(Path.home() / ".cache/sidecache-test/onnx"))
    ap.add_argument("--save", action="store_true", help="write the JSON to --out")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results/embedder_speed.json"))
    args = ap.parse_args()
    set_offline()
    load_at_start = os.getloadavg()[0]
    batches = [int(b) for b in args.batches.split(",")]

    from sidecache.cache.bundled import MODEL_FILE, bundled_dir

    shipped_mb = (bundled_dir() / MODEL_FILE).stat().st_size / 2**20
    load = measure_load()
    print(
        f"shipped int8 model ({shipped_mb:.1f} MB): loaded in {load['shipped_load_s']:.3f}s,"
        f" first vector after {load['shipped_first_vector_s']:.3f}s"
    )
    torch_extra = has_torch_extra()
    export: dict[str, float] = {}
    if torch_extra:
        export = measure_export()
        print(
            f"start-time export (cold, torch extra): fp32 {export['fp32_export_s']:.1f}s"
            f" ({export['fp32_mb']:.0f} MB), dynamic int8 quantisation"
            f" {export['int8_quantize_s']:.1f}s ({export['int8_mb']:.0f} MB)\n"
        )

    data_dir = Path(tempfile.mkdtemp())
    shipped = load_embedder(EmbedderConfig(), data_dir)
    assert needs_torch(EmbedderConfig()) is None
    backends: dict[str, Embedder] = {"onnx int8 shipped (static)": shipped}
    if torch_extra:
        model = resolve_model_path(EmbedderConfig())
        dynamic = export_onnx(model, Path(args.onnx_dir), quantize=True)
        backends |= {
            "onnx int8 export (dynamic)": OnnxEmbedder(dynamic, model, threads=1),
            "onnx fp32 export": load_embedder(
                EmbedderConfig(onnx_dir=args.onnx_dir, quantize=False), data_dir
            ),
            "torch (sentence-transformers)": load_embedder(
                EmbedderConfig(backend="torch"), data_dir
            ),
        }
    # Rounds are interleaved across backends, so a busy spell on a shared box hits them alike.
    best = {(name, b): float("inf") for name in backends for b in batches}
    for rnd in range(args.rounds):
        for name, e in backends.items():
            for b in batches:
                best[name, b] = min(best[name, b], time_encode(e, b, args.seconds, rnd))
    rows = []
    print(f"{'backend':32s} {'batch':>5s} {'ms/prompt':>10s} {'prompts/s':>10s}")
    for (name, b), per_call in best.items():
        row = {"backend": name, "batch": b, "ms_per_prompt": per_call * 1000 / b}
        row["prompts_per_s"] = b / per_call
        rows.append(row)
        print(f"{name:32s} {b:5d} {row['ms_per_prompt']:10.2f} {row['prompts_per_s']:10.0f}")

    print(
        f"\nMicroBatcher over the shipped model ({args.seconds * 2:.0f}s per cell, best of rounds)"
    )
    print(f"{'callers':>7s} {'wait ms':>7s} {'prompts/s':>10s} {'p50 ms':>7s} {'p99 ms':>7s} batch")
    conc = []
    for callers in (1, 8, 64):
        for wait in (0.0, 2.0):
            runs = [
                asyncio.run(_concurrent(shipped, callers, wait, args.seconds * 2))
                for _ in range(max(1, args.rounds - 1))
            ]
            r = max(runs, key=lambda x: x["prompts_per_s"])
            conc.append(r)
            print(
                f"{callers:7d} {wait:7.1f} {r['prompts_per_s']:10.0f} {r['p50_ms']:7.2f}"
                f" {r['p99_ms']:7.2f} {r['mean_batch']:5.1f}"
            )

    out = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "load_avg_at_start": load_at_start,
            "load_avg_at_end": os.getloadavg()[0],
        },
        "prompt_words": round(statistics.mean(len(p.split()) for p in PROMPTS), 1),
        "shipped_mb": shipped_mb,
        "load": load,
        "export": export,
        "encode": rows,
        "batcher": conc,
    }
    if args.save:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
