"""What the gateway adds to a miss: latency and time to first token, direct vs through it.

Starts the fake upstream (``tests/support/fake_upstream``), a bare Starlette + httpx
pass-through (``bare_proxy.py``: the floor any Python proxy on this stack costs) and the gateway,
all as real processes on loopback. The gateway runs as in production: a virtual key with rate
limits, the cache on (exact layer: every request here is a miss, looked up and then stored) and
accounting. N requests go round-robin to the three paths with one keep-alive client, so all see
the same machine noise. Prints p50 / p99 of whole-request latency and of time to the first SSE
event (streamed), the added milliseconds and the p50 ratio to the direct round trip; writes
proxy_overhead.json (``--save``: into benchmarks/results/, which the README quotes).

The other APIs go through the gateway in the same loop: ``/v1/responses`` and ``/v1/messages``
(translated to the same upstream chat call, so their added time is measured against the direct
chat call) and ``/v1/embeddings`` (one new input a request, against the upstream's own
``/v1/embeddings``). Their added p50 is compared with chat's in the same run: the target is
within 0.5 ms.

    python benchmarks/proxy_overhead.py [-n 500]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from report import add_save_flag, results_dir  # noqa: E402
from support import Gateway, basic_config, free_port, start_upstream, write_config  # noqa: E402
from support.keys import create_key  # noqa: E402
from support.processes import _wait_ready as wait_ready  # noqa: E402


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


class Bare:
    """The bare pass-through process."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc, self.url = proc, f"http://127.0.0.1:{port}/v1"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def start_bare(upstream: str, tmp: Path) -> Bare:
    port = free_port()
    log = tmp / "bare.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "bare_proxy.py"),
                "--port",
                str(port),
                "--upstream",
                upstream,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_ready(f"http://127.0.0.1:{port}/readyz", proc, 20.0, "bare proxy", log)
    return Bare(proc, port)


def endpoint_bodies(mode: str, i: int, stream: bool) -> dict[str, tuple[str, dict]]:
    """Gateway-only paths of the loop: (url suffix, body), each a miss with a prompt of the
    chat prompt's length (its own words: the same text would be the chat entry's exact hit)."""

    def text(api: str) -> str:
        return f"{mode} {api} prompt {i} " * 3

    return {
        "gateway/responses": (
            "/responses",
            {"model": "m1", "input": text("responses"), "stream": stream},
        ),
        "gateway/messages": (
            "/messages",
            {
                "model": "m1",
                "max_tokens": 1024,
                "messages": [{"role": "user", "content": text("messages")}],
                "stream": stream,
            },
        ),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (Linux ``/proc``): unlike latency, barely moved by
    other load on the machine, so the gateway's cost per request can be set against the bare
    proxy's even on a busy 2-core box."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1000, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", type=int, default=500, help="requests per path and mode")
    ap.add_argument("--warmup", type=int, default=50)
    add_save_flag(ap)
    args = ap.parse_args()

    up = start_upstream("u1")
    tmp = Path(tempfile.mkdtemp(prefix="sidecache-bench-"))
    config = basic_config([up], tmp, cache=True, cache_extra="semantic = false")
    gw = Gateway(write_config(tmp, config)).start()
    key = create_key(gw.config_path, "bench", "--rpm", "1000000", "--tpm", "100000000").raw
    bare = start_bare(up.base_url, tmp)
    paths = {"direct": up.base_url, "bare": bare.url, "gateway": gw.base_url}
    rows: dict[str, dict[str, float]] = {}
    cpu: dict[str, dict[str, float]] = {}
    assert gw.proc is not None
    pids = {"bare": bare.proc.pid, "gateway": gw.proc.pid}
    try:
        headers = {"authorization": f"Bearer {key}"}
        with httpx.Client(timeout=30, trust_env=False, headers=headers) as client:
            for stream in (True, False):
                mode = "stream" if stream else "non-stream"
                samples: dict[str, list[tuple[float, float]]] = {p: [] for p in paths}
                used = {name: cpu_seconds(pid) for name, pid in pids.items()}
                served = {"bare": 0, "gateway": 0}
                for i in range(args.warmup + args.n):
                    body = {
                        "stream": stream,
                        "messages": [
                            {"role": "user", "content": f"{mode} benchmark prompt {i} " * 3}
                        ],
                    }
                    for name, base in paths.items():
                        b = dict(body, model="m1" if name == "gateway" else "gpt-x")
                        result = one(client, base + "/chat/completions", b, stream)
                        served[name] = served.get(name, 0) + 1
                        if i >= args.warmup:
                            samples[name].append(result)
                    for name, (suffix, eb) in endpoint_bodies(mode, i, stream).items():
                        result = one(client, gw.base_url + suffix, eb, stream)
                        served["gateway"] += 1
                        if i >= args.warmup:
                            samples.setdefault(name, []).append(result)
                    if not stream:  # embeddings: no stream; one new input a request
                        text = f"embedding benchmark input {i}"
                        for name, base, model in (
                            ("direct/embeddings", up.base_url, "gpt-x"),
                            ("gateway/embeddings", gw.base_url, "m1"),
                        ):
                            eb = {"model": model, "input": [text], "encoding_format": "base64"}
                            result = one(client, base + "/embeddings", eb, False)
                            served[name] = served.get(name, 0) + 1
                            if i >= args.warmup:
                                samples.setdefault(name, []).append(result)
                time.sleep(0.2)  # let background work the requests caused finish
                cpu[mode] = {
                    name: (cpu_seconds(pid) - used[name]) * 1000 / served[name]
                    for name, pid in pids.items()
                }
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
        bare.stop()
        up.close()

    print(f"\nproxy overhead, {args.n} requests per row (misses, loopback)\n")
    print(f"{'mode/path':<32}{'p50 ms':>9}{'p99 ms':>9}{'ttft p50':>10}{'ttft p99':>10}")
    for key, r in rows.items():
        print(
            f"{key:<32}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}"
            f"{r['ttft_p50_ms']:>10.3f}{r['ttft_p99_ms']:>10.3f}"
        )
    summary = {}
    for mode in ("stream", "non-stream"):
        d = rows[f"{mode}/direct"]
        vias = ["bare", "gateway", "gateway/responses", "gateway/messages"]
        if mode == "non-stream":
            vias.append("gateway/embeddings")
        for via in vias:
            if via == "gateway/embeddings":
                d = rows[f"{mode}/direct/embeddings"]
            g = rows[f"{mode}/{via}"]
            summary[f"{mode}/{via}"] = s = {
                "added_p50_ms": g["p50_ms"] - d["p50_ms"],
                "added_p99_ms": g["p99_ms"] - d["p99_ms"],
                "added_ttft_p50_ms": g["ttft_p50_ms"] - d["ttft_p50_ms"],
                "ratio_p50": g["p50_ms"] / d["p50_ms"],
                "ratio_ttft_p50": g["ttft_p50_ms"] / d["ttft_p50_ms"],
            }
            print(
                f"{mode + '/' + via:<30} added p50 {s['added_p50_ms']:.3f} ms,"
                f" p99 {s['added_p99_ms']:.3f} ms, ttft p50 {s['added_ttft_p50_ms']:.3f} ms;"
                f" ratio p50 {s['ratio_p50']:.2f}x, ttft {s['ratio_ttft_p50']:.2f}x"
            )
    print()
    for mode, c in cpu.items():
        # /proc counts CPU in clock ticks (10 ms): a short run can read 0 for the bare proxy;
        # then there is no ratio to report rather than a division by zero.
        if c["bare"] > 0:
            c["ratio"] = c["gateway"] / c["bare"]
            versus = f"{c['ratio']:.2f}x the bare proxy"
        else:
            versus = "too short a run to compare"
        print(
            f"{mode:<11} CPU per request: bare {c['bare']:.3f} ms, gateway {c['gateway']:.3f} ms"
            f" ({versus}; gateway: every endpoint of the loop)"
        )
    print()
    for mode in ("stream", "non-stream"):
        chat = summary[f"{mode}/gateway"]["added_p50_ms"]
        for api in ("responses", "messages", "embeddings"):
            key = f"{mode}/gateway/{api}"
            if key in summary:
                s = summary[key]
                s["added_p50_vs_chat_ms"] = s["added_p50_ms"] - chat
                verdict = "ok" if s["added_p50_vs_chat_ms"] <= 0.5 else "OVER 0.5 ms"
                print(
                    f"{key:<30} added p50 {s['added_p50_ms']:.3f} ms vs chat's {chat:.3f} ms:"
                    f" {s['added_p50_vs_chat_ms']:+.3f} ms ({verdict})"
                )
    out = {
        "benchmark": "proxy_overhead",
        "n": args.n,
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "rows": rows,
        "summary": summary,
        "cpu_ms_per_request": cpu,
        "target": "gateway p50 at most 2.5x the direct round trip (non-stream), auth, limits,"
        " cache and accounting on; responses, messages and embeddings add at most 0.5 ms p50"
        " more than chat",
    }
    path = results_dir(args.save) / "proxy_overhead.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
