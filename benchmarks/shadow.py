"""Does shadow traffic add latency to the client's request? Measured in one run, side by side.

Starts two fake upstreams (``tests/support/fake_upstream``) and the gateway as real processes:
alias ``plain`` is served by u1; alias ``shadowed`` is served by u1 too and mirrors every miss
(``rate = 1.0``) to u2, which answers 50 ms later than u1 (``[[slow_on:u2:50]]`` in every prompt,
so both aliases send the same bytes). The cache and accounting are on, as in production; every
request is a miss (a fresh prompt). Requests alternate between the two aliases with one
keep-alive client (which of the two goes first is drawn at random for each pair), so both see
the same machine noise; then the same with ``--concurrency`` clients at once. Prints client
latency p50/p95/p99 per alias (and time to first event when streamed), the p50 difference with
a bootstrap 95% interval, the same for two random halves of the plain samples (the noise floor,
A/A), and what the side lane did (mirrored, dropped). Writes
shadow.json (``--save``: into benchmarks/results/).

    python benchmarks/shadow.py [-n 400] [--concurrency 8]
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

from report import add_save_flag, results_dir  # noqa: E402
from support import Gateway, basic_config, start_upstreams, write_config  # noqa: E402
from support.counters import wait_for  # noqa: E402

ADMIN = "sk-admin-shadow-bench"
ONNX_DIR = Path.home() / ".cache" / "sidecache-test" / "onnx"
EXTRA = """
[models.plain]
targets = [{target = "u1/gpt-x"}]

[models.shadowed]
targets = [{target = "u1/gpt-x"}]
shadow = {target = "u2/gpt-y", rate = 1.0}

[side_traffic]
max_in_flight = 32
"""


async def one(
    client: httpx.AsyncClient, alias: str, text: str, stream: bool
) -> tuple[float, float]:
    """(seconds to the last byte, seconds to the first SSE event or the whole body)."""
    body = {"model": alias, "stream": stream, "messages": [{"role": "user", "content": text}]}
    t0 = time.perf_counter()
    if not stream:
        r = await client.post("/v1/chat/completions", json=body)
        r.raise_for_status()
        t = time.perf_counter() - t0
        return t, t
    first = None
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if first is None and line.startswith("data: "):
                first = time.perf_counter() - t0
    return time.perf_counter() - t0, first or 0.0


def p50_interval(
    a: list[float], b: list[float], rng: np.random.Generator
) -> tuple[float, float, float]:
    """p50(b) - p50(a) in ms, with a bootstrap 95% interval."""
    x, y = np.array(a) * 1000, np.array(b) * 1000
    diff = float(np.median(y) - np.median(x))
    boots = [
        np.median(rng.choice(y, y.size)) - np.median(rng.choice(x, x.size)) for _ in range(2000)
    ]
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return diff, float(lo), float(hi)


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1000, q))


async def measure(
    gw: Gateway, n: int, warmup: int, stream: bool, concurrency: int, tag: str
) -> dict[str, list[tuple[float, float]]]:
    samples: dict[str, list[tuple[float, float]]] = {"plain": [], "shadowed": []}
    limits = httpx.Limits(
        max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2
    )
    async with httpx.AsyncClient(base_url=gw.url, timeout=30, limits=limits, trust_env=False) as c:
        order = np.random.default_rng(1).random(warmup + n) < 0.5

        async def worker(w: int) -> None:
            for i in range(w, warmup + n, concurrency):
                for alias in ("plain", "shadowed") if order[i] else ("shadowed", "plain"):
                    text = f"[[slow_on:u2:50]] {tag} {alias} question {i} about topic {i * 7919}"
                    result = await one(c, alias, text, stream)
                    if i >= warmup:
                        samples[alias].append(result)

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return samples


def side(gw: Gateway) -> dict[str, Any]:
    with gw.http(ADMIN) as http:
        doc: dict[str, Any] = http.get("/stats").json()["quality"]
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", type=int, default=400, help="requests per alias and mode")
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--concurrency", type=int, default=8)
    add_save_flag(ap)
    args = ap.parse_args()

    ups = start_upstreams([("u1", "openai"), ("u2", "openai")])
    tmp = Path(tempfile.mkdtemp(prefix="sidecache-shadow-"))
    config = basic_config(
        ups,
        tmp,
        cache=True,
        server_extra=f'admin_key = "{ADMIN}"',
        cache_extra=f'[cache.embedder]\nonnx_dir = "{ONNX_DIR}"\n',
        extra=EXTRA,
    )
    gw = Gateway(write_config(tmp, config)).start()
    rng = np.random.default_rng(0)
    rows: dict[str, Any] = {}
    try:
        for concurrency in (1, args.concurrency):
            for stream in (False, True):
                mode = f"{'stream' if stream else 'json'}, {concurrency} client" + (
                    "s" if concurrency > 1 else ""
                )
                samples = asyncio.run(
                    measure(gw, args.n, args.warmup, stream, concurrency, mode.replace(" ", ""))
                )
                total = {a: [t for t, _ in xs] for a, xs in samples.items()}
                first = {a: [f for _, f in xs] for a, xs in samples.items()}
                plain = total["plain"]
                diff = p50_interval(plain, total["shadowed"], rng)
                half = rng.permutation(len(plain)) < len(plain) // 2
                aa = p50_interval(
                    [x for x, h in zip(plain, half, strict=True) if h],
                    [x for x, h in zip(plain, half, strict=True) if not h],
                    rng,
                )
                ttft = p50_interval(first["plain"], first["shadowed"], rng)
                # let the side calls of this mode end before the next one is measured
                assert wait_for(lambda: side(gw)["side_traffic"]["in_flight"] == 0, timeout=60)
                rows[mode] = {
                    alias: {
                        "p50_ms": pct(total[alias], 50),
                        "p95_ms": pct(total[alias], 95),
                        "p99_ms": pct(total[alias], 99),
                        "first_event_p50_ms": pct(first[alias], 50),
                    }
                    for alias in total
                }
                rows[mode].update(
                    p50_diff_ms=diff[0],
                    p50_diff_ci95_ms=[diff[1], diff[2]],
                    first_event_p50_diff_ms=ttft[0],
                    aa_p50_diff_ms=aa[0],
                    aa_p50_diff_ci95_ms=[aa[1], aa[2]],
                    within_noise=diff[1] <= 0 <= diff[2] or abs(diff[0]) <= abs(aa[0]) + 0.1,
                )
        quality = side(gw)
    finally:
        gw.stop()
        for up in ups:
            up.close()

    print(f"\nshadow traffic: {args.n} misses per alias and mode; the shadow answers 50 ms later\n")
    print(f"{'mode':<20}{'alias':<10}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'1st ev p50':>11}")
    for mode, r in rows.items():
        for alias in ("plain", "shadowed"):
            a = r[alias]
            print(
                f"{mode:<20}{alias:<10}{a['p50_ms']:>8.2f}{a['p95_ms']:>8.2f}{a['p99_ms']:>8.2f}"
                f"{a['first_event_p50_ms']:>11.2f}"
            )
        lo, hi = r["p50_diff_ci95_ms"]
        alo, ahi = r["aa_p50_diff_ci95_ms"]
        print(
            f"{'':<20}p50 shadowed - plain: {r['p50_diff_ms']:+.2f} ms (95% {lo:+.2f}..{hi:+.2f});"
            f" plain A/A: {r['aa_p50_diff_ms']:+.2f} ms ({alo:+.2f}..{ahi:+.2f});"
            f" within noise: {r['within_noise']}"
        )
    shadow = quality["shadow"]["shadowed"]
    lane = quality["side_traffic"]
    print(
        f"\nmirrored {shadow['mirrored']}, dropped (lane full)"
        f" {sum(lane['dropped'].get('shadow', {}).values())}; shadow p50"
        f" {shadow['shadow']['latency_p50_ms']} ms against primary"
        f" {shadow['primary']['latency_p50_ms']} ms; same answer {shadow['agreement_rate']}"
    )
    out = results_dir(args.save) / "shadow.json"
    out.write_text(
        json.dumps(
            {
                "n": args.n,
                "concurrency": args.concurrency,
                "modes": rows,
                "shadow": shadow,
                "side_traffic": lane,
                "machine": platform.platform(),
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
