"""Embedder speed: backend x batch size, the micro-batcher under concurrency, ONNX export time.

Run: ``python benchmarks/embedder_speed.py [--seconds 1.0] [--rounds 3] [--onnx-dir DIR]``.
Prints tables and writes ``benchmarks/results/embedder_speed.json``. Each figure is the best of
``--rounds`` timed rounds (the box may be shared; the best round is the least disturbed one).
Prompts are ~15 words, like a typical chat question.
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
from sidecache.cache.embedder import Embedder, load_embedder, resolve_model_path, set_offline
from sidecache.cache.onnx_embedder import export_onnx
from sidecache.config import EmbedderConfig

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


def time_encode(e: Embedder, batch: int, seconds: float, rounds: int) -> float:
    """Best seconds per encode call of ``batch`` prompts."""
    best = float("inf")
    texts = [PROMPTS[i % len(PROMPTS)] for i in range(batch)]
    e.encode(texts)  # warm-up
    for r in range(rounds):
        offset = r * batch
        calls = 0
        t0 = time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds or calls < 3:
            e.encode([PROMPTS[(offset + calls + i) % len(PROMPTS)] for i in range(batch)])
            calls += 1
        best = min(best, elapsed / calls)
    return best


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


def measure_export() -> dict[str, float]:
    """Cold export into a fresh directory: trace to fp32, then quantise to int8."""
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="per timed round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--onnx-dir", default=str(Path.home() / ".cache/sidecache-test/onnx"))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results/embedder_speed.json"))
    args = ap.parse_args()
    set_offline()
    load_at_start = os.getloadavg()[0]
    batches = [int(b) for b in args.batches.split(",")]

    export = measure_export()
    print(
        f"ONNX export (cold): fp32 {export['fp32_export_s']:.1f}s ({export['fp32_mb']:.0f} MB),"
        f" int8 quantisation {export['int8_quantize_s']:.1f}s ({export['int8_mb']:.0f} MB)\n"
    )

    data_dir = Path(tempfile.mkdtemp())
    backends: dict[str, Embedder] = {
        "torch (sentence-transformers)": load_embedder(EmbedderConfig(backend="torch"), data_dir),
        "onnx fp32": load_embedder(
            EmbedderConfig(onnx_dir=args.onnx_dir, quantize=False), data_dir
        ),
        "onnx int8": load_embedder(EmbedderConfig(onnx_dir=args.onnx_dir, quantize=True), data_dir),
    }
    rows = []
    print(f"{'backend':32s} {'batch':>5s} {'ms/prompt':>10s} {'prompts/s':>10s}")
    for name, e in backends.items():
        for b in batches:
            per_call = time_encode(e, b, args.seconds, args.rounds)
            row = {"backend": name, "batch": b, "ms_per_prompt": per_call * 1000 / b}
            row["prompts_per_s"] = b / per_call
            rows.append(row)
            print(f"{name:32s} {b:5d} {row['ms_per_prompt']:10.2f} {row['prompts_per_s']:10.0f}")

    print(f"\nMicroBatcher over onnx int8 ({args.seconds * 2:.0f}s per cell, best of rounds)")
    print(f"{'callers':>7s} {'wait ms':>7s} {'prompts/s':>10s} {'p50 ms':>7s} {'p99 ms':>7s} batch")
    conc = []
    for callers in (1, 8, 64):
        for wait in (0.0, 2.0):
            runs = [
                asyncio.run(_concurrent(backends["onnx int8"], callers, wait, args.seconds * 2))
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
        "export": export,
        "encode": rows,
        "batcher": conc,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
