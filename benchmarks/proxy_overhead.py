"""What the gateway adds to a miss: latency and time to first token, direct vs through it.

Starts the fake upstream (tests/upstream.py) and the gateway with the cache off, both as real
processes on loopback, then sends N requests alternately straight to the upstream and through
the gateway with one keep-alive client, so both paths see the same machine noise. Prints p50 /
p99 of whole-request latency and of time to first SSE event (streamed), and non-streamed
latency, the added milliseconds and the ratio; writes benchmarks/results/proxy_overhead.json.

    python benchmarks/proxy_overhead.py [-n 500]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from harness import Gateway, basic_config, start_upstream, write_config  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def one(client: httpx.Client, url: str, body: dict, stream: bool) -> tuple[float, float]:
    """(total seconds, seconds to the first SSE data line or the whole body)."""
    t0 = time.perf_counter()
    if not stream:
        r = client.post(url, json=body)
        r.raise_for_status()
        t = time.perf_counter() - t0
        return t, t
    ttft = None
    with client.stream("POST", url, json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if ttft is None and line.startswith("data: "):
                ttft = time.perf_counter() - t0
    return time.perf_counter() - t0, ttft or 0.0


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1000, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", type=int, default=500, help="requests per path and mode")
    ap.add_argument("--warmup", type=int, default=50)
    args = ap.parse_args()

    up = start_upstream("u1")
    tmp = Path(tempfile.mkdtemp(prefix="sidecache-bench-"))
    gw = Gateway(write_config(tmp, basic_config([up], tmp, cache=False))).start()
    paths = {"direct": up.base_url, "gateway": gw.base_url}
    rows: dict[str, dict[str, float]] = {}
    try:
        with httpx.Client(timeout=30, trust_env=False) as client:
            for stream in (True, False):
                mode = "stream" if stream else "non-stream"
                samples: dict[str, list[tuple[float, float]]] = {p: [] for p in paths}
                for i in range(args.warmup + args.n):
                    body = {
                        "stream": stream,
                        "messages": [{"role": "user", "content": f"benchmark prompt {i} " * 3}],
                    }
                    for name, base in paths.items():
                        b = dict(body, model="m1" if name == "gateway" else "gpt-x")
                        result = one(client, base + "/chat/completions", b, stream)
                        if i >= args.warmup:
                            samples[name].append(result)
                for name, xs in samples.items():
                    total = [t for t, _ in xs]
                    first = [f for _, f in xs]
                    rows[f"{mode}/{name}"] = {
                        "p50_ms": pct(total, 50),
                        "p99_ms": pct(total, 99),
                        "ttft_p50_ms": pct(first, 50),
                        "ttft_p99_ms": pct(first, 99),
                    }
    finally:
        gw.stop()
        up.close()

    print(f"\nproxy overhead, {args.n} requests per row (cache off, loopback)\n")
    print(f"{'mode/path':<22}{'p50 ms':>9}{'p99 ms':>9}{'ttft p50':>10}{'ttft p99':>10}")
    for key, r in rows.items():
        print(
            f"{key:<22}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}"
            f"{r['ttft_p50_ms']:>10.3f}{r['ttft_p99_ms']:>10.3f}"
        )
    summary = {}
    for mode in ("stream", "non-stream"):
        d, g = rows[f"{mode}/direct"], rows[f"{mode}/gateway"]
        summary[mode] = {
            "added_p50_ms": g["p50_ms"] - d["p50_ms"],
            "added_p99_ms": g["p99_ms"] - d["p99_ms"],
            "added_ttft_p50_ms": g["ttft_p50_ms"] - d["ttft_p50_ms"],
            "ratio_p50": g["p50_ms"] / d["p50_ms"],
            "ratio_ttft_p50": g["ttft_p50_ms"] / d["ttft_p50_ms"],
        }
        s = summary[mode]
        print(
            f"{mode:<11} added p50 {s['added_p50_ms']:.3f} ms, p99 {s['added_p99_ms']:.3f} ms, "
            f"ttft p50 {s['added_ttft_p50_ms']:.3f} ms; ratio p50 {s['ratio_p50']:.2f}x, "
            f"ttft {s['ratio_ttft_p50']:.2f}x"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "benchmark": "proxy_overhead",
        "n": args.n,
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "rows": rows,
        "summary": summary,
        "target": "added p50 < 2 ms for a miss with the cache off",
    }
    (RESULTS / "proxy_overhead.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'proxy_overhead.json'}")


if __name__ == "__main__":
    main()
