"""Two tenants share one gateway under load: does ``/stats`` split their traffic right?

Starts two fake upstreams (``tests/support/fake_upstream``) and ``sidecache serve`` as real
processes, with a pricing table and (unless ``--no-cache``) the cache on, creates one key per
tenant with the ``sidecache keys create`` command, then runs a short bounded load through the
openai async client at a fixed concurrency. The tenants have different mixes:

* ``acme``   model ``m`` (round-robin over both upstreams), short questions: mostly repeats of
             a small FAQ pool (exact hits), some paraphrases of it (semantic hits) and some
             one-line questions on 30 topics; a fifth streamed; no limits.
* ``globex`` model ``m1`` only (its key allows nothing else), long briefing prompts on the same
             30 topics, half streamed, and a requests-per-minute limit the load runs into.

The hit verifier is switched off (its model file may not be built yet), so the prompts are kept
free of near-duplicates that only it would tell apart.

The client tallies what it saw per tenant (outcome header, status, usage); the gateway's
``/stats`` is then printed per tenant as a table, checked against the client's tally (requests,
outcomes, tokens and dollars at the configured prices) and written, with both tallies, to
benchmarks/results/tenants_load.json.

    python benchmarks/tenants_load.py [--acme 240] [--globex 160] [--concurrency 8] [--no-cache]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from report import add_save_flag, results_dir  # noqa: E402
from support import Gateway, basic_config, start_upstreams, write_config  # noqa: E402

ADMIN = "sk-admin-tenants-load"
PRICE_IN, PRICE_OUT = 2.5, 10.0  # USD per million tokens (gpt-4o list prices)
ONNX_DIR = Path.home() / ".cache" / "sidecache-test" / "onnx"
GLOBEX_RPM = 120

FAQ = [
    "how do I reset my password",
    "what are your opening hours",
    "how can I change my delivery address",
    "do you ship to canada",
    "how do I cancel my subscription",
    "where can I download my invoice",
    "what payment methods do you accept",
    "how long does a refund take",
]
# Paraphrases of FAQ entries: fair semantic hits once the original is cached.
PARAPHRASES = [
    "I forgot my password, how do I reset it",
    "when are you open",
    "how do I update the address you deliver to",
    "can I cancel my subscription",
    "which payment methods can I use",
]
TOPICS = [
    "the history of the printing press",
    "how vaccines train the immune system",
    "the rules of cricket",
    "why the sky is blue",
    "how a jet engine works",
    "the causes of the french revolution",
    "how to brew green tea",
    "what a black hole is",
    "how compound interest grows",
    "the life cycle of a butterfly",
    "how bread rises",
    "what plate tectonics explains",
    "how noise cancelling headphones work",
    "the origins of the olympic games",
    "how coral reefs form",
    "what inflation does to savings",
    "how a bill becomes law",
    "the physics of a rainbow",
    "how honey bees communicate",
    "why leaves change colour in autumn",
    "how solar panels make electricity",
    "the basics of double entry bookkeeping",
    "how the stock exchange sets prices",
    "what causes tides",
    "how a refrigerator keeps food cold",
    "the story of the silk road",
    "how antibiotics kill bacteria",
    "the main ideas of stoic philosophy",
    "how glaciers shape valleys",
    "what a supply chain is",
]


def cost(prompt_tokens: int, completion_tokens: int) -> float:
    return (prompt_tokens * PRICE_IN + completion_tokens * PRICE_OUT) / 1_000_000


@dataclass
class Job:
    tenant: str
    model: str
    text: str
    stream: bool


def jobs_for(rnd: random.Random, n_acme: int, n_globex: int) -> list[Job]:
    """The two tenants' requests, shuffled together (a fixed seed: the same load every run)."""
    jobs: list[Job] = []
    for _ in range(n_acme):
        u = rnd.random()
        if u < 0.6:
            text = rnd.choice(FAQ)
        elif u < 0.75:
            text = rnd.choice(PARAPHRASES)
        else:
            text = f"in two sentences, explain {rnd.choice(TOPICS)}"
        jobs.append(Job("acme", "m", text, stream=rnd.random() < 0.2))
    for _ in range(n_globex):
        text = (
            f"Write a detailed briefing for the board about {rnd.choice(TOPICS)}, covering"
            " background, current state, risks, open questions and a recommendation, in plain"
            " language for executives."
        )
        jobs.append(Job("globex", "m1", text, stream=rnd.random() < 0.5))
    rnd.shuffle(jobs)
    return jobs


@dataclass
class Tally:
    """What the client saw for one tenant."""

    sent: int = 0
    status: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    saved_usd: float = 0.0
    latency_ms: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        lat = np.array(self.latency_ms) if self.latency_ms else np.zeros(1)
        return {
            "sent": self.sent,
            "status": {str(k): v for k, v in sorted(self.status.items())},
            "outcomes": dict(sorted(self.outcomes.items())),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "saved_usd": round(self.saved_usd, 6),
            "latency_p50_ms": round(float(np.percentile(lat, 50)), 2),
            "latency_p95_ms": round(float(np.percentile(lat, 95)), 2),
        }


async def run_one(client: openai.AsyncOpenAI, job: Job, tally: Tally) -> None:
    tally.sent += 1
    messages = [{"role": "user", "content": job.text}]
    t0 = time.perf_counter()
    try:
        if job.stream:
            raw = await client.chat.completions.with_raw_response.create(
                model=job.model,
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
            )
            usage = None
            async for chunk in raw.parse():
                usage = chunk.usage or usage
        else:
            raw = await client.chat.completions.with_raw_response.create(
                model=job.model,
                messages=messages,  # type: ignore[arg-type]
            )
            usage = raw.parse().usage
    except openai.APIStatusError as exc:
        tally.status[exc.status_code] += 1
        tally.outcomes["error"] += 1
        return
    tally.latency_ms.append((time.perf_counter() - t0) * 1000)
    tally.status[200] += 1
    outcome = raw.headers.get("x-sidecache", "?")
    tally.outcomes[outcome] += 1
    if usage is None:
        return
    usd = cost(usage.prompt_tokens, usage.completion_tokens)
    if outcome.startswith("hit"):
        tally.saved_usd += usd
    else:
        tally.prompt_tokens += usage.prompt_tokens
        tally.completion_tokens += usage.completion_tokens
        tally.cost_usd += usd


async def load(
    gw: Gateway, keys: dict[str, str], jobs: list[Job], concurrency: int
) -> dict[str, Tally]:
    clients = {t: gw.async_client(k, timeout=60) for t, k in keys.items()}
    tallies = {t: Tally() for t in keys}
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Job) -> None:
        async with gate:
            await run_one(clients[job.tenant], job, tallies[job.tenant])

    await asyncio.gather(*(one(j) for j in jobs))
    for c in clients.values():
        await c.close()
    return tallies


def create_key(config: Path, tenant: str, *options: str) -> str:
    """``sidecache keys create``, as an operator runs it; returns the raw key."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    command = [sys.executable, "-m", "sidecache", "keys", "create", "--config", str(config)]
    r = subprocess.run(
        [*command, "--tenant", tenant, *options],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
        check=True,
    )
    print(f"  {r.stderr.strip()}")
    return r.stdout.strip()


def check(stats: dict[str, Any], tallies: dict[str, Tally]) -> dict[str, dict[str, bool]]:
    """Does the gateway's per-tenant split agree with what each client saw?"""
    out: dict[str, dict[str, bool]] = {}
    for tenant, t in tallies.items():
        row = stats["tenants"].get(tenant, {})
        o = t.outcomes
        out[tenant] = {
            "requests": row.get("requests") == t.sent,
            "outcomes": (
                row.get("hit_exact"),
                row.get("hit_semantic"),
                row.get("misses"),
                row.get("bypass"),
                row.get("errors"),
            )
            == (o["hit-exact"], o["hit-semantic"], o["miss"], o["bypass"], o["error"]),
            "tokens": (row.get("prompt_tokens"), row.get("completion_tokens"))
            == (t.prompt_tokens, t.completion_tokens),
            "cost": abs(row.get("cost_usd", -1) - t.cost_usd) < 1e-5,
            "saved": abs(row.get("saved_usd", -1) - t.saved_usd) < 1e-5,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--acme", type=int, default=240, help="requests from tenant acme")
    ap.add_argument("--globex", type=int, default=160, help="requests from tenant globex")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-cache", action="store_true", help="run with the cache off")
    add_save_flag(ap)
    args = ap.parse_args()
    cache = not args.no_cache

    ups = start_upstreams([("u1", "openai"), ("u2", "openai")])
    tmp = Path(tempfile.mkdtemp(prefix="sidecache-tenants-"))
    cache_extra = f'[cache.verifier]\nenabled = false\n[cache.embedder]\nonnx_dir = "{ONNX_DIR}"'
    text = basic_config(
        ups,
        tmp,
        cache=cache,
        cache_extra=cache_extra if cache else "",
        server_extra=f'admin_key = "{ADMIN}"',
        extra=f'[pricing."gpt-x"]\ninput = {PRICE_IN}\noutput = {PRICE_OUT}\n',
    )
    config = write_config(tmp, text)
    print("keys (sidecache keys create):")
    keys = {
        "acme": create_key(config, "acme"),
        "globex": create_key(config, "globex", "--models", "m1", "--rpm", str(GLOBEX_RPM)),
    }
    gw = Gateway(config).start()
    try:
        jobs = jobs_for(random.Random(args.seed), args.acme, args.globex)
        t0 = time.perf_counter()
        tallies = asyncio.run(load(gw, keys, jobs, args.concurrency))
        elapsed = time.perf_counter() - t0
        with httpx.Client(base_url=gw.url, trust_env=False, timeout=10) as http:
            auth = {"authorization": f"Bearer {ADMIN}"}
            deadline = time.monotonic() + 5
            while True:  # streamed answers are accounted just after their last byte
                stats = http.get("/stats", headers=auth).json()
                if stats["totals"]["requests"] >= len(jobs) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        upstream_calls = sum(u.stats()["requests"] for u in ups)
    finally:
        gw.stop()
        for u in ups:
            u.close()

    agree = check(stats, tallies)
    cols = [
        ("tenant", 8, "s"),
        ("requests", 9, "d"),
        ("ok", 6, "d"),
        ("429", 5, "d"),
        ("exact", 6, "d"),
        ("semantic", 9, "d"),
        ("miss", 6, "d"),
        ("bypass", 7, "d"),
        ("errors", 7, "d"),
        ("hit rate", 9, "s"),
        ("prompt tok", 11, "d"),
        ("compl tok", 10, "d"),
        ("$ spent", 10, "s"),
        ("$ saved", 10, "s"),
        ("p50 ms", 8, "s"),
        ("agrees", 7, "s"),
    ]
    print(
        f"\n{len(jobs)} requests from 2 tenants, concurrency {args.concurrency}, cache "
        f"{'on' if cache else 'off'}: {elapsed:.1f} s, {len(jobs) / elapsed:.0f} req/s; "
        f"{upstream_calls} upstream calls\n"
    )
    print("".join(f"{name:>{w}}" if i else f"{name:<{w}}" for i, (name, w, _) in enumerate(cols)))
    for tenant, row in stats["tenants"].items():
        t = tallies.get(tenant, Tally())
        lat = t.as_dict()["latency_p50_ms"]
        values = [
            tenant,
            row["requests"],
            t.status[200],
            t.status[429],
            row["hit_exact"],
            row["hit_semantic"],
            row["misses"],
            row["bypass"],
            row["errors"],
            f"{row['hit_rate'] * 100:.1f}%",
            row["prompt_tokens"],
            row["completion_tokens"],
            f"${row['cost_usd']:.4f}",
            f"${row['saved_usd']:.4f}",
            f"{lat:.1f}",
            "yes" if all(agree.get(tenant, {"-": False}).values()) else "NO",
        ]
        print(
            "".join(
                f"{v:<{w}}" if i == 0 else f"{v:>{w}}"
                for i, (v, (_, w, _)) in enumerate(zip(values, cols, strict=True))
            )
        )
    tot = stats["totals"]
    print(
        f"{'total':<8}{tot['requests']:>9}{'':>11}{tot['hit_exact']:>6}{tot['hit_semantic']:>9}"
        f"{tot['misses']:>6}{tot['bypass']:>7}{tot['errors']:>7}{tot['hit_rate'] * 100:>8.1f}%"
        f"{tot['prompt_tokens']:>11}{tot['completion_tokens']:>10}"
        f"{'$' + format(tot['cost_usd'], '.4f'):>10}{'$' + format(tot['saved_usd'], '.4f'):>10}"
    )
    for tenant, checks in agree.items():
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            print(f"  {tenant}: /stats and the client disagree on {', '.join(bad)}")
    upstream_charged = tot["misses"] + tot["bypass"]
    if upstream_calls != upstream_charged:
        print(
            f"  note: {upstream_charged} requests were charged as upstream calls but the"
            f" upstreams answered {upstream_calls} (coalesced identical misses are charged"
            " to every follower)"
        )

    out = {
        "benchmark": "tenants_load",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "config": {
            "acme": args.acme,
            "globex": args.globex,
            "concurrency": args.concurrency,
            "seed": args.seed,
            "cache": cache,
            "globex_rpm": GLOBEX_RPM,
            "price_per_million": {"input": PRICE_IN, "output": PRICE_OUT},
        },
        "elapsed_s": round(elapsed, 3),
        "requests_per_s": round(len(jobs) / elapsed, 1),
        "upstream_calls": upstream_calls,
        "stats_tenants": stats["tenants"],
        "stats_totals": tot,
        "client_tallies": {t: v.as_dict() for t, v in tallies.items()},
        "agreement": agree,
    }
    path = results_dir(args.save) / "tenants_load.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {path}")
    if not all(all(c.values()) for c in agree.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
