"""Cold start of a sidecar: how soon a fresh gateway opens its port, is ready, and serves a hit.

Each run starts ``sidecache serve`` in an empty data directory (a new container's first start)
and measures from the moment the process is spawned: the port accepting connections, ``/readyz``
answering 200 (model and indexes loaded), the first answer (a miss, through a fake upstream) and
the first *semantic* hit (a paraphrase of it), and the process's RSS once ready and after the
hit. With ``--offline`` (the default where the machine allows it) the whole run happens inside a
network namespace with loopback only (``unshare -n``), as a sidecar with no route to a model hub.

    python benchmarks/cold_start.py [--runs 5] [--no-offline] [--save]

Targets (2 cores): port open <= 0.3 s, ready <= 2 s, first semantic hit <= 3 s, RSS <= 250 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from report import add_save_flag, results_dir  # noqa: E402
from support import free_port, start_upstream  # noqa: E402

ASKED = "How do I reverse a list in Python?"
PARAPHRASE = "What's the way to reverse a Python list?"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one_run(upstream_url: str) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix="sidecache-cold-"))
    config = data.parent / f"{data.name}.toml"
    config.write_text(
        f'[server]\ndata_dir = "{data}"\n\n[providers.up]\nbase_url = "{upstream_url}"\n\n'
        '[models.fast]\ntargets = [{target = "up/gpt-4o-mini"}]\n'
    )
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sidecache", "serve", "--config", str(config), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out: dict[str, float] = {}
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
                break
            except OSError:
                time.sleep(0.002)
        out["port_open_s"] = time.perf_counter() - t0
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False) as h:
            while h.get("/readyz").status_code != 200:
                time.sleep(0.005)
            out["ready_s"] = time.perf_counter() - t0
            out["rss_ready_mb"] = rss_mb(proc.pid)
            outcomes = []
            for text in (ASKED, PARAPHRASE):
                body = {"model": "fast", "messages": [{"role": "user", "content": text}]}
                r = h.post("/v1/chat/completions", json=body)
                r.raise_for_status()
                outcomes.append(r.headers["x-sidecache"])
                out["first_answer_s" if len(outcomes) == 1 else "first_semantic_hit_s"] = (
                    time.perf_counter() - t0
                )
            if outcomes != ["miss", "hit-semantic"]:
                raise RuntimeError(f"expected a miss then a semantic hit, got {outcomes}")
            out["rss_after_hit_mb"] = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(15)
        shutil.rmtree(data, ignore_errors=True)
        config.unlink(missing_ok=True)
    return out


def offline_prefix() -> list[str]:
    if not (shutil.which("unshare") and shutil.which("ip")):
        return []
    probe = subprocess.run(["unshare", "-n", "--", "true"], capture_output=True)
    if probe.returncode != 0:
        return []
    return ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-offline", action="store_true", help="keep the machine's network")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--offline-ran", action="store_true", help=argparse.SUPPRESS)
    add_save_flag(ap)
    args = ap.parse_args()
    if not args.inside:
        prefix = [] if args.no_offline else offline_prefix()
        argv = [sys.executable, __file__, "--inside", "--runs", str(args.runs)]
        if args.save:
            argv.append("--save")
        if prefix:
            argv.append("--offline-ran")
        sys.exit(subprocess.call([*prefix, *argv]))

    offline = args.offline_ran
    up = start_upstream("cold")
    try:
        runs = [one_run(up.base_url) for _ in range(args.runs)]
    finally:
        up.close()
    keys = ["port_open_s", "ready_s", "first_answer_s", "first_semantic_hit_s"]
    mem = ["rss_ready_mb", "rss_after_hit_mb"]
    print(f"\ncold start, {args.runs} runs, {'no network but loopback' if offline else 'online'}")
    print(f"{'':<22}{'median':>9}{'min':>9}{'max':>9}")
    summary = {}
    for k in keys + mem:
        xs = [r[k] for r in runs]
        summary[k] = {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}
        unit = "s" if k.endswith("_s") else "MB"
        print(f"{k:<22}{summary[k]['median']:>8.3f}{unit[0]}{min(xs):>8.3f}{max(xs):>9.3f}")
    load = os.getloadavg()[0]
    print(f"(load average {load:.1f} on {os.cpu_count()} cores)")
    doc = {
        "benchmark": "cold_start",
        "offline": offline,
        "runs": runs,
        "summary": summary,
        "load_average": load,
        "targets": {
            "port_open_s": 0.3,
            "ready_s": 2.0,
            "first_semantic_hit_s": 3.0,
            "rss_ready_mb": 250,
        },
    }
    path = results_dir(args.save) / "cold_start.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
