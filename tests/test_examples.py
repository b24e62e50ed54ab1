"""The deployment examples run: the Node.js Lambda handler and the Python function, each against
a live gateway (a fake upstream behind it), and each with the sidecar down.

The Node example needs its npm package (``npm ci --prefix examples/node-lambda``, which
``.ci/run`` does); without node or the package the Node tests skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from support import REPO_ROOT, Gateway, UpstreamSet, free_port
from support.counters import wait_for

NODE_DIR = REPO_ROOT / "examples" / "node-lambda"
PY_MAIN = REPO_ROOT / "examples" / "python-function" / "main.py"
NODE = shutil.which("node")


@pytest.fixture
def gateway(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> Gateway:
    """A gateway with the alias the examples ask for (``fast``), the cache on."""
    u1 = upstreams["u1"]
    config = f"""
[server]
data_dir = "{tmp_path / "data"}"

[providers.openai]
base_url = "{u1.base_url}"
api_key = "sk-upstream"

[models.fast]
targets = [{{ target = "openai/gpt-4o-mini" }}]
"""
    return gateway_factory(config)


def run_node(event: dict[str, object], url: str) -> dict[str, object]:
    env = {**os.environ, "SIDECACHE_URL": url, "SIDECACHE_KEY": "sk-sc-example"}
    done = subprocess.run(
        [NODE or "node", "run-local.mjs", json.dumps(event)],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


needs_node = pytest.mark.skipif(
    NODE is None or not (NODE_DIR / "node_modules" / "openai").is_dir(),
    reason="node or the example's npm package (npm ci --prefix examples/node-lambda) is missing",
)


@needs_node
def test_the_node_lambda_handler_gets_an_itinerary_then_a_hit(gateway: Gateway) -> None:
    outcomes = []
    for stream in (False, False, True):
        event = {"destination": "Lisbon", "days": 2, "stream": stream}
        result = run_node(event, gateway.base_url)
        assert result["statusCode"] == 200, result
        body = json.loads(str(result["body"]))
        assert "Plan a 2-day itinerary for Lisbon" in body["itinerary"]
        outcomes.append(body["cache"])
    assert outcomes == ["miss", "hit-exact", "hit-exact"]


@needs_node
def test_the_node_lambda_handler_says_when_the_sidecar_is_down() -> None:
    result = run_node({"destination": "Lisbon"}, f"http://127.0.0.1:{free_port()}/v1")
    assert result["statusCode"] == 503
    assert "sidecar is unreachable" in json.loads(str(result["body"]))["error"]
    bad = run_node({}, f"http://127.0.0.1:{free_port()}/v1")
    assert bad["statusCode"] == 400


@pytest.fixture
def python_function() -> Iterator[Callable[[str], str]]:
    """``start(sidecache_url) -> base URL`` of the example service; stopped after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(url: str) -> str:
        port = free_port()
        env = {**os.environ, "SIDECACHE_URL": url, "PORT": str(port), "SIDECACHE_KEY": "sk-sc-x"}
        procs.append(subprocess.Popen([sys.executable, str(PY_MAIN)], env=env))
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                httpx.post(base, json={}, timeout=1)
            except httpx.HTTPError:
                return False
            return True

        assert wait_for(up, 20.0)
        return base

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


def test_the_python_function_gets_an_itinerary_then_a_hit(
    gateway: Gateway, python_function: Callable[[str], str]
) -> None:
    base = python_function(gateway.base_url)
    outcomes = []
    for stream in (False, False, True):
        r = httpx.post(base, json={"destination": "Kyoto", "days": 3, "stream": stream}, timeout=60)
        assert r.status_code == 200, r.text
        assert "Plan a 3-day itinerary for Kyoto" in r.json()["itinerary"]
        outcomes.append(r.json()["cache"])
    assert outcomes == ["miss", "hit-exact", "hit-exact"]


def test_the_python_function_says_when_the_sidecar_is_down(
    python_function: Callable[[str], str],
) -> None:
    base = python_function(f"http://127.0.0.1:{free_port()}/v1")
    r = httpx.post(base, json={"destination": "Kyoto"}, timeout=60)
    assert r.status_code == 503 and "sidecar is unreachable" in r.json()["error"]
    assert httpx.post(base, content=b"not json", timeout=10).status_code == 400
