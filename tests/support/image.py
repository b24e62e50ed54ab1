"""The production image without a Docker engine: what the Dockerfile says, done by hand.

``dockerfile_runtime(path)`` reads the Dockerfile's last stage: its ``ENV`` (continuation lines
joined), the ``pip install`` command of its install line and its ``CMD``. ``install(...)`` builds
the wheel as the build stage does and installs it into a fresh venv with that command only.

``python -m support.image SCENARIO.json`` then plays a container start inside whatever network
namespace it is run in (the test runs it under ``unshare -n``: no network but loopback): a fake
upstream, a key made with the venv's own ``sidecache keys create``, ``sidecache serve`` started
exactly as ``CMD`` with the image's ``ENV`` (paths mapped into a scratch directory, ``HOME`` and
``TMPDIR`` empty directories), a miss, a hit, and a listing of every file written outside the
data directory. It prints one JSON report.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from support.processes import free_port
from support.upstreams import start_upstream

__all__ = ["dockerfile_runtime", "install"]


def _instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of a Dockerfile, continuation lines joined, comments out."""
    joined = re.sub(
        r"\\\n\s*",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerfile_runtime(path: Path) -> dict[str, Any]:
    """The last stage's ``env`` (dict), ``install`` (argv of its pip install) and ``cmd``."""
    steps = _instructions(path.read_text())
    last = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    env: dict[str, str] = {}
    install: list[str] = []
    cmd: list[str] = []
    for word, rest in steps[last + 1 :]:
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
        elif word == "RUN" and "pip install" in rest and not install:
            install = shlex.split(rest.split("&&")[0])
        elif word == "CMD":
            cmd = json.loads(rest)
    return {"env": env, "install": install, "cmd": cmd}


def install(repo: Path, runtime: dict[str, Any], scratch: Path) -> Path:
    """Build the wheel and install it into ``scratch/venv`` with the image's line; the venv."""
    wheels = scratch / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-cache-dir",
            "-q",
            "--wheel-dir",
            str(wheels),
            str(repo),
        ],
        check=True,
    )
    venv = scratch / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    argv = [str(venv / "bin" / "pip") if a == "pip" else a for a in runtime["install"]]
    argv = [
        a
        for arg in argv
        for a in (sorted(map(str, wheels.glob("*.whl"))) if arg == "/wheels/*.whl" else [arg])
    ]
    subprocess.run([*argv, "-q"], check=True)
    return venv


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def scenario(spec: dict[str, Any]) -> dict[str, Any]:
    venv, scratch = Path(spec["venv"]), Path(spec["scratch"])
    data, home, tmp = scratch / "data", scratch / "home", scratch / "tmp"
    for d in (home, tmp):
        d.mkdir(parents=True, exist_ok=True)
    upstream = start_upstream("openai")
    port = free_port()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(tmp)}
    for key, value in spec["env"].items():
        env[key] = value.replace("/data", str(data)) if value.startswith("/data") else value
    env.update(PORT=str(port), OPENAI_BASE_URL=upstream.base_url, OPENAI_API_KEY="sk-upstream")
    before = {"venv": _files(venv)}
    report: dict[str, Any] = {}
    try:
        key = subprocess.run(
            [str(venv / "bin" / "sidecache"), "keys", "create", "--tenant", "sidecar"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=str(data.parent),
        ).stdout.strip()
        argv = [str(venv / "bin" / spec["cmd"][0]), *spec["cmd"][1:]]
        log = (scratch / "serve.log").open("wb")
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=str(data), stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30, trust_env=False) as http:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError((scratch / "serve.log").read_text())
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)
            report["ready_s"] = time.perf_counter() - t0
            headers = {"authorization": f"Bearer {key}"}
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Is it on?"}]}
            outcomes = []
            for _ in range(2):
                r = http.post("/v1/chat/completions", json=body, headers=headers)
                outcomes.append((r.status_code, r.headers.get("x-sidecache")))
            report["outcomes"] = outcomes
            report["anonymous"] = http.post("/v1/chat/completions", json=body).status_code
            report["healthz"] = http.get("/healthz").status_code
        proc.terminate()
        report["exit"] = proc.wait(15)
        report["log"] = (scratch / "serve.log").read_text()
    finally:
        upstream.close()
    report["written_outside_data"] = {
        "home": sorted(_files(home)),
        "tmp": sorted(_files(tmp)),
        "venv": sorted(_files(venv) - before["venv"]),
    }
    report["data_files"] = sorted(_files(data))
    return report


if __name__ == "__main__":
    print(json.dumps(scenario(json.loads(Path(sys.argv[1]).read_text()))))
