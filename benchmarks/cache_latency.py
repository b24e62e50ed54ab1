"""Cache latency and throughput through the real gateway, for each embedding backend.

For each backend (onnx, torch) it starts the fake upstream and `sidecache serve` on loopback,
stores the first prompt of each true-paraphrase pair in benchmarks/data/prompt_pairs.jsonl, and
measures, with one client: p50/p99 latency of exact hits, semantic hits (verifier on and off)
and misses, non-streamed, and time to first token streamed; then hits per second with 1, 8 and
64 concurrent clients; the embedding batch sizes the micro-batcher formed under load; and the
cold start (process start to the first served semantic hit on an existing data dir).
Prints a table per backend and writes cache_latency.json (``--save``: into benchmarks/results/).

    python benchmarks/cache_latency.py [--backends onnx,torch] [-n 300] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from loadgen import encode_request, run, ttft  # noqa: E402
from report import add_save_flag, results_dir  # noqa: E402
from support import Gateway, basic_config, start_upstream, write_config  # noqa: E402

ONNX_DIR = ROOT / "benchmarks" / ".cache" / "onnx"
ADMIN = "sk-bench-admin"


def pairs() -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in (ROOT / "benchmarks/data/prompt_pairs.jsonl").open()]
    return [(r["a"], r["b"]) for r in rows if r["label"] == 1]


def config(up, tmp: Path, backend: str) -> str:
    extra = """
[models.nv]
verifier = false
targets = [{target = "u1/gpt-x"}]
"""
    cache_extra = f"""
threshold = 0.8
[cache.embedder]
backend = "{backend}"
onnx_dir = "{ONNX_DIR}"
"""
    return basic_config(
        [up],
        tmp,
        cache=True,
        server_extra=f'admin_key = "{ADMIN}"',
        cache_extra=cache_extra,
        extra=extra,
    )


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1000, q)) if xs else float("nan")


def body(text: str, model: str = "m1", stream: bool = False) -> dict[str, Any]:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    up = start_upstream("u1")
    tmp = Path(tempfile.mkdtemp(prefix=f"sidecache-bench-{backend}-"))
    cfg = write_config(tmp, config(up, tmp, backend))
    gw = Gateway(cfg).start()
    host, port = "127.0.0.1", gw.port
    out: dict[str, Any] = {"backend": backend}
    try:
        all_pairs = pairs()
        client = httpx.Client(base_url=gw.url, timeout=30, trust_env=False)
        for model in ("m1", "nv"):
            for a, _ in all_pairs:
                client.post("/v1/chat/completions", json=body(a, model)).raise_for_status()
        # stores finish in the background (embedding each prompt): wait for all of them
        admin = {"authorization": f"Bearer {ADMIN}"}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            entries = client.get("/admin/cache/stats", headers=admin).json()["entries"]
            if entries >= 2 * len(all_pairs):
                break
            time.sleep(0.2)
        # keep only pairs whose paraphrase is a semantic hit on both aliases
        usable = []
        for a, b in all_pairs:
            tags = [
                client.post("/v1/chat/completions", json=body(b, m)).headers["x-sidecache"]
                for m in ("m1", "nv")
            ]
            if tags == ["hit-semantic", "hit-semantic"]:
                usable.append((a, b))
        out["pairs_stored"] = len(all_pairs)
        out["paraphrases_hit"] = len(usable)

        def requests(texts: list[str], model: str = "m1") -> list[bytes]:
            return [
                encode_request(host, port, "/v1/chat/completions", body(t, model), {})
                for t in texts
            ]

        exact = requests([a for a, _ in usable])
        semantic = requests([b for _, b in usable])
        semantic_nv = requests([b for _, b in usable], "nv")
        misses = requests([f"unique miss number {i} about topic {i * 7}" for i in range(args.n)])

        def sequential(reqs: list[bytes], n: int) -> dict[str, Any]:
            r = asyncio.run(run(host, port, lambda i: reqs[i % len(reqs)], concurrency=1, total=n))
            return {
                "p50_ms": pct(r.latencies, 50),
                "p99_ms": pct(r.latencies, 99),
                "outcomes": r.outcomes,
            }

        rows: dict[str, Any] = {}
        rows["exact hit"] = sequential(exact, args.n)
        rows["semantic hit"] = sequential(semantic, args.n)
        rows["semantic hit, verifier off"] = sequential(semantic_nv, args.n)
        rows["miss"] = sequential(misses, args.n)

        def stream_ttft(texts: list[str], n: int) -> dict[str, float]:
            firsts = []
            for i in range(n):
                req = encode_request(
                    host, port, "/v1/chat/completions", body(texts[i % len(texts)], stream=True), {}
                )
                firsts.append(asyncio.run(ttft(host, port, req))[0])
            return {"ttft_p50_ms": pct(firsts, 50), "ttft_p99_ms": pct(firsts, 99)}

        n_stream = max(50, args.n // 3)
        rows["exact hit"].update(stream_ttft([a for a, _ in usable], n_stream))
        rows["semantic hit"].update(stream_ttft([b for _, b in usable], n_stream))
        rows["miss"].update(
            stream_ttft(
                [f"streamed miss {i} on subject {i * 3}" for i in range(n_stream)], n_stream
            )
        )
        out["latency"] = rows

        throughput: dict[str, dict[str, float]] = {}
        for name, reqs in (("exact", exact), ("semantic", semantic)):
            throughput[name] = {}
            for c in (1, 8, 64):
                r = asyncio.run(
                    run(
                        host,
                        port,
                        lambda i, q=reqs: q[i % len(q)],
                        concurrency=c,
                        duration=args.seconds,
                    )
                )
                throughput[name][str(c)] = r.rate
        out["hits_per_second"] = throughput
        out["semantic_scaling_64_vs_1"] = throughput["semantic"]["64"] / throughput["semantic"]["1"]
        stats = client.get("/admin/cache/stats", headers=admin).json()
        out["batch_sizes"] = stats.get("batch_sizes") or stats.get("embedder", {}).get(
            "batch_sizes"
        )
        client.close()
    finally:
        gw.stop()

    # cold start: a new process on the same data dir, to the first served semantic hit
    a, b = usable[0]
    t0 = time.perf_counter()
    gw2 = Gateway(cfg)
    gw2.launch()
    with httpx.Client(timeout=5, trust_env=False) as c:
        while True:
            try:
                r = c.post(gw2.base_url + "/chat/completions", json=body(b))
                if r.headers.get("x-sidecache") == "hit-semantic":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    out["cold_start_s"] = time.perf_counter() - t0
    gw2.stop()
    up.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--backends", default="onnx,torch")
    ap.add_argument("-n", type=int, default=300, help="sequential requests per latency row")
    ap.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput run")
    add_save_flag(ap)
    args = ap.parse_args()
    results = [bench_backend(b, args) for b in args.backends.split(",")]

    for res in results:
        print(
            f"\n== backend {res['backend']}: {res['paraphrases_hit']}/{res['pairs_stored']} "
            f"paraphrases hit; cold start {res['cold_start_s']:.2f} s =="
        )
        print(f"{'request':<28}{'p50 ms':>9}{'p99 ms':>9}{'ttft p50':>10}{'ttft p99':>10}")
        for name, row in res["latency"].items():
            print(
                f"{name:<28}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
                f"{row.get('ttft_p50_ms', float('nan')):>10.2f}"
                f"{row.get('ttft_p99_ms', float('nan')):>10.2f}"
            )
        lat = res["latency"]
        added = lat["semantic hit"]["p50_ms"] - lat["semantic hit, verifier off"]["p50_ms"]
        res["verifier_added_p50_ms"] = added
        print(f"verifier adds {added:.2f} ms p50 to a semantic hit")
        print(f"{'hits/s':<28}{'1':>9}{'8':>9}{'64':>10}")
        for name, row in res["hits_per_second"].items():
            print(f"{name:<28}{row['1']:>9.0f}{row['8']:>9.0f}{row['64']:>10.0f}")
        print(f"semantic hits/s, 64 clients vs 1: {res['semantic_scaling_64_vs_1']:.1f}x")
        print(f"embedding batch sizes seen: {res['batch_sizes']}")

    doc = {
        "benchmark": "cache_latency",
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "args": vars(args),
        "results": results,
        "targets": {
            "exact_hit_p50_ms": "< 2",
            "semantic_hit_p50_ms_onnx": "< 8",
            "semantic_hits_per_s_64_onnx": ">= 500 and >= 3x single client",
            "verifier_added_p50_ms": "< 2",
        },
    }
    path = results_dir(args.save) / "cache_latency.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
