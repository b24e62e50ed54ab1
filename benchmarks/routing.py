"""Routing strategies side by side: cost, latency and errors against round-robin.

Starts three fake upstreams (``tests/support/fake_upstream``) made different on purpose, and
for each strategy its own ``sidecache serve`` with one alias over the three (cache off, default
retries and circuit breakers), then sends every strategy the same N prompts (``--requests``,
2,000 by default), interleaved (prompt j goes to each strategy's gateway in turn) at a fixed
arrival rate (``--rate``, 80 per second in all: an open loop below what two shared cores serve,
so latency is mostly the upstreams' and the router's, and a busy machine slows every strategy
alike):

* ``u1`` premium:  dear ($5 / $15 per million tokens), quick (~15 ms), fails 1% of the time
* ``u2`` budget:   cheap ($0.15 / $0.60), slow (~150 ms), fails 8%
* ``u3`` standard: between ($1 / $4), ~50 ms with a slow tail (1 request in 8 takes ~400 ms),
  fails 3%

Latency is drawn per request and per upstream from these profiles (with a fixed seed: every
strategy sees the same draws) and injected with the fake upstream's ``[[slow_on:NAME:MS]]``
directives; failures with its ``fail_rate`` control. Costs come from the gateway's own
``/stats`` (real usage at the configured prices). The table shows, per strategy: the mean cost
per request and its ratio to round-robin, p50/p95 latency as the client saw it, the share of
requests the client saw fail, the share of upstream attempts that failed (retried by the
router), and where requests went.

    python benchmarks/routing.py [--requests 2000] [--rate 80] [--save]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from report import add_save_flag, results_dir  # noqa: E402
from support import Gateway, Upstream, basic_config, start_upstreams, write_config  # noqa: E402

STRATEGIES = ["round-robin", "cheapest", "fastest", "least-busy", "reliable"]
PROFILES: dict[str, dict[str, Any]] = {
    "u1": {"model": "gpt-premium", "price": (5.0, 15.0), "ms": 15, "tail": None, "fail": 0.01},
    "u2": {"model": "gpt-budget", "price": (0.15, 0.60), "ms": 150, "tail": None, "fail": 0.08},
    "u3": {
        "model": "gpt-standard",
        "price": (1.0, 4.0),
        "ms": 50,
        "tail": (0.125, 400),
        "fail": 0.03,
    },
}
PROMPT = "Summarise the quarterly report for the sales team in three short bullet points"


def latency_ms(rnd: random.Random, profile: dict[str, Any]) -> int:
    """One draw: lognormal around the profile's median, plus its slow tail if it has one."""
    ms = profile["ms"] * rnd.lognormvariate(0.0, 0.25)
    tail = profile["tail"]
    if tail is not None and rnd.random() < tail[0]:
        ms = tail[1] * rnd.lognormvariate(0.0, 0.25)
    return max(1, round(ms))


def workload(n: int, seed: int) -> list[str]:
    """The same N prompts for every strategy: each carries every upstream's latency draw."""
    rnd = random.Random(seed)
    texts = []
    for i in range(n):
        slow = "".join(f"[[slow_on:{name}:{latency_ms(rnd, p)}]]" for name, p in PROFILES.items())
        texts.append(f"{slow} {PROMPT} (request {i})")
    return texts


def config_text(ups: list[Upstream], tmp: Path, strategy: str) -> str:
    targets = ", ".join(f'{{target = "{u.name}/{PROFILES[u.name]["model"]}"}}' for u in ups)
    extra = [f'[models.bench]\nstrategy = "{strategy}"\ntargets = [{targets}]\n']
    for p in PROFILES.values():
        extra.append(
            f'[pricing."{p["model"]}"]\ninput = {p["price"][0]}\noutput = {p["price"][1]}\n'
        )
    return basic_config(ups, tmp, extra="\n".join(extra), server_extra="max_connections = 4096")


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    served: dict[str, int] = field(default_factory=dict)
    transport_errors: list[str] = field(default_factory=list)


async def drive(
    gateways: dict[str, Gateway], texts: list[str], rate: float, in_flight: int
) -> dict[str, Tally]:
    """Open loop, interleaved: the j-th prompt goes to every strategy's gateway in turn, one
    request every 1/rate seconds whatever the answers before it are doing (as independent
    users send), so every strategy meets the same prompts under the same machine load.

    At most ``in_flight`` requests are outstanding: a client that falls behind (a busy machine)
    sends late rather than piling up thousands of waiting requests, whose bookkeeping in
    httpcore's pool grows with the square of their number. Latency is timed from the send."""
    tallies = {s: Tally() for s in gateways}
    slots = asyncio.Semaphore(in_flight)
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    clients = {
        s: httpx.AsyncClient(base_url=gw.url, timeout=60, limits=limits, trust_env=False)
        for s, gw in gateways.items()
    }

    async def one(strategy: str, text: str) -> None:
        tally = tallies[strategy]
        body = {"model": "bench", "messages": [{"role": "user", "content": text}]}
        try:
            t0 = time.perf_counter()
            try:
                r = await clients[strategy].post("/v1/chat/completions", json=body)
            except httpx.TransportError as exc:  # counted as a failed request, status 0
                tally.latencies.append(time.perf_counter() - t0)
                tally.statuses[0] = tally.statuses.get(0, 0) + 1
                tally.transport_errors.append(type(exc).__name__)
                return
            tally.latencies.append(time.perf_counter() - t0)
            tally.statuses[r.status_code] = tally.statuses.get(r.status_code, 0) + 1
            if r.status_code == 200:
                who = (r.json().get("system_fingerprint") or "").removeprefix("fp_")
                tally.served[who] = tally.served.get(who, 0) + 1
        finally:
            slots.release()

    try:
        t0 = time.perf_counter()
        tasks = []
        i = 0
        for text in texts:
            for strategy in gateways:
                wait = t0 + i / rate - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                await slots.acquire()
                tasks.append(asyncio.create_task(one(strategy, text)))
                i += 1
        await asyncio.gather(*tasks)
    finally:
        for client in clients.values():
            await client.aclose()
    return tallies


def summarise(strategy: str, tally: Tally, stats: dict[str, Any], n: int) -> dict[str, Any]:
    lat = np.array(tally.latencies) * 1000
    row = stats["models"]["bench"]
    attempts = sum(t.get("calls", 0) for t in stats["targets"].values())
    failed = sum(sum(p["errors_by_reason"].values()) for p in stats["providers"].values())
    return {
        "strategy": strategy,
        "requests": n,
        "cost_usd": row["cost_usd"],
        "cost_per_request_usd": row["cost_usd"] / n,
        "cost_per_1k_tokens": row["cost_per_1k_tokens"],
        "latency_p50_ms": round(float(np.percentile(lat, 50)), 1),
        "latency_p95_ms": round(float(np.percentile(lat, 95)), 1),
        "latency_mean_ms": round(float(lat.mean()), 1),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "client_error_rate": (n - tally.statuses.get(200, 0)) / n,
        "upstream_attempts": attempts,
        "upstream_failure_rate": failed / attempts if attempts else 0.0,
        "served": dict(sorted(tally.served.items())),
        "transport_errors": len(tally.transport_errors),
    }


def run(
    strategies: list[str], texts: list[str], rate: float, in_flight: int
) -> list[dict[str, Any]]:
    ups = start_upstreams([(name, "openai") for name in PROFILES])
    gateways: dict[str, Gateway] = {}
    try:
        for up in ups:
            up.control(fail_rate=PROFILES[up.name]["fail"], fail_status=503)
        with tempfile.TemporaryDirectory(prefix="sidecache-routing-") as tmp:
            for strategy in strategies:
                folder = Path(tmp) / strategy
                folder.mkdir()
                path = write_config(folder, config_text(ups, folder, strategy))
                gateways[strategy] = Gateway(path, log_path=folder / "gateway.log")
            for gw in gateways.values():
                gw.launch()
            for gw in gateways.values():
                gw.start()
            t0 = time.perf_counter()
            tallies = asyncio.run(drive(gateways, texts, rate, in_flight))
            print(
                f"  sent {len(texts) * len(strategies)} in {time.perf_counter() - t0:.1f} s",
                file=sys.stderr,
            )
            rows = []
            with httpx.Client(trust_env=False) as http:
                for strategy, gw in gateways.items():
                    stats = http.get(f"{gw.url}/stats").json()
                    rows.append(summarise(strategy, tallies[strategy], stats, len(texts)))
            return rows
    finally:
        for gw in gateways.values():
            gw.stop()
        for up in ups:
            up.close()


def print_table(rows: list[dict[str, Any]]) -> None:
    base = rows[0]
    print(
        f"{'strategy':<13}{'$/request':>12}{'vs rr':>8}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'errors':>9}{'upstream fails':>16}   served u1/u2/u3"
    )
    for r in rows:
        ratio = r["cost_per_request_usd"] / base["cost_per_request_usd"]
        share = "/".join(str(r["served"].get(u, 0)) for u in PROFILES)
        print(
            f"{r['strategy']:<13}{r['cost_per_request_usd']:>12.7f}{ratio:>8.2f}"
            f"{r['latency_p50_ms']:>9.1f}{r['latency_p95_ms']:>9.1f}"
            f"{r['client_error_rate']:>9.2%}{r['upstream_failure_rate']:>16.2%}   {share}"
        )


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the processes it started
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--rate", type=float, default=80.0, help="requests sent per second, all strategies"
    )
    parser.add_argument(
        "--in-flight", type=int, default=64, help="most requests outstanding at once, in all"
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    add_save_flag(parser)
    args = parser.parse_args()
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if strategies[0] != "round-robin":
        strategies.insert(0, "round-robin")  # the baseline every ratio is against
    texts = workload(args.requests, args.seed)
    rows = run(strategies, texts, args.rate, args.in_flight)
    print_table(rows)
    rr = rows[0]
    checks = {
        "cheapest_costs_less": next(r for r in rows if r["strategy"] == "cheapest")[
            "cost_per_request_usd"
        ]
        < rr["cost_per_request_usd"]
        if "cheapest" in strategies
        else None,
        "fastest_lower_p95": next(r for r in rows if r["strategy"] == "fastest")["latency_p95_ms"]
        < rr["latency_p95_ms"]
        if "fastest" in strategies
        else None,
    }
    print(json.dumps(checks))
    doc = {
        "benchmark": "routing",
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "config": {
            "requests": args.requests,
            "rate_per_s": args.rate,
            "in_flight": args.in_flight,
            "seed": args.seed,
            "upstreams": PROFILES,
        },
        "results": rows,
        "checks": checks,
    }
    out = results_dir(args.save) / "routing.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
