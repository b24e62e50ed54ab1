"""The production image, tested without a Docker engine (there is none here).

The wheel is built as the Dockerfile's build stage builds it and installed into a fresh venv
with the runtime stage's install line only; then ``sidecache serve`` starts exactly as its
``CMD`` and ``ENV`` say, in an empty directory with an empty ``HOME`` and, where the machine
allows it (``unshare -n``), with no network but loopback. It must serve a miss and a hit, need
no torch, and write nothing outside its data directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import REPO_ROOT
from support.image import dockerfile_runtime, install

DOCKERFILE = REPO_ROOT / "Dockerfile"
TESTS_DIR = REPO_ROOT / "tests"


def test_the_dockerfile_says_what_a_container_needs() -> None:
    text = DOCKERFILE.read_text()
    runtime = dockerfile_runtime(DOCKERFILE)
    assert text.count("FROM ") >= 2, "multi-stage: the build tools stay out of the image"
    assert runtime["env"]["SIDECACHE_DATA_DIR"] == "/data" and "VOLUME /data" in text
    assert runtime["env"]["PORT"] == "8080"  # Cloud Run overrides PORT
    assert "USER sidecache" in text and "HEALTHCHECK" in text and "/healthz" in text
    assert runtime["cmd"][:2] == ["sidecache", "serve"]
    assert "torch" not in " ".join(runtime["install"])


def _network_cut() -> list[str]:
    """A prefix that runs a command with no network but loopback, if this machine allows it."""
    if shutil.which("unshare") and shutil.which("ip"):
        probe = subprocess.run(
            ["unshare", "-n", "--", "ip", "link", "set", "lo", "up"], capture_output=True
        )
        if probe.returncode == 0:
            return ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    return []


@pytest.mark.timeout(600)
def test_the_image_serves_offline_and_writes_only_its_data(tmp_path: Path) -> None:
    runtime = dockerfile_runtime(DOCKERFILE)
    venv = install(REPO_ROOT, runtime, tmp_path)
    listed = subprocess.run(
        [str(venv / "bin" / "pip"), "list", "--format=json"], capture_output=True, text=True
    )
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert not names & {"torch", "sentence-transformers", "transformers", "onnx"}, names
    assert not any(n.startswith("nvidia") for n in names)

    scratch = tmp_path / "container"
    scratch.mkdir()
    spec = {"venv": str(venv), "scratch": str(scratch), **runtime}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": f"{TESTS_DIR}:{REPO_ROOT / 'src'}"}
    cut = _network_cut()
    done = subprocess.run(
        [*cut, sys.executable, "-m", "support.image", str(tmp_path / "spec.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["outcomes"] == [[200, "miss"], [200, "hit-exact"]], report
    assert report["anonymous"] == 401  # bound to 0.0.0.0: only keys get in
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: exit status "killed by 15"
    assert report["healthz"] == 200 and report["exit"] in (0, -15)
    assert report["written_outside_data"] == {"home": [], "tmp": [], "venv": []}, report
    assert {"cache.db", "state.db"} <= set(report["data_files"])
    log = report["log"]
    assert "sidecache listening on http://0.0.0.0:" in log and "anonymous access: off" in log
    assert "Traceback" not in log
    ours = ("sidecache ", "semantic cache:", "{")  # the start line, the cache's, access lines
    noise = [line for line in log.splitlines() if line and not line.startswith(ours)]
    assert not noise, noise  # no library chatter at the default log level
