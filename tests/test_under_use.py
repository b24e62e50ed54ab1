"""What holds under use, tried from outside as users and attackers try it.

Each test here was written against a failure seen from outside while every feature test passed:
a budget overspent by a burst of concurrent requests, a revoked last key that reopened the door,
an answer invisible to the very next request, an abandoned stream never billed, a documented
setting that did nothing, slow clients that held the gateway, tracebacks for clients that left,
unbounded inputs, world-readable databases, and errors that did not help. They race the gateway
as users do (no sleep between a request and the next, dozens in flight at once, clients that
leave) and wait only on the gateway's own counters.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from support import REPO_ROOT, Gateway, Upstream, UpstreamSet, basic_config, free_port
from support.counters import settled, wait_for
from support.keys import create_key, keys_cli

# The fake upstream answers "Answer to: <prompt>", one token a word: a prompt of three words is
# an answer of five tokens, so $200,000 per million output tokens makes every answer cost $1.
DOLLAR_AN_ANSWER = """
[pricing."gpt-x"]
input = 0.0
output = 200000.0
"""
FAST_RETRY = "[routing.retry]\nbackoff_base = 0.0\nbackoff_max = 0.0\n"


def ask(gw: Gateway, key: str | None, text: str, model: str = "m1", **kw: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}], **kw}
    with gw.http(key) as http:
        return http.post("/v1/chat/completions", json=body)


async def burst(
    gw: Gateway, key: str, texts: list[str], **kw: Any
) -> list[int]:  # status codes, in order
    client = gw.async_client(key, timeout=60)

    async def one(text: str) -> int:
        try:
            await client.chat.completions.create(
                model="m1", messages=[{"role": "user", "content": text}], **kw
            )
        except openai.APIStatusError as exc:
            return exc.status_code
        return 200

    try:
        return list(await asyncio.gather(*(one(t) for t in texts)))
    finally:
        await client.close()


# -- 1. a budget is a hard ceiling under concurrency --------------------------------------------


def test_a_budget_holds_against_a_burst_of_concurrent_misses(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(basic_config(upstreams, tmp_path, extra=DOLLAR_AN_ANSWER))
    key = create_key(gw.config_path, "burst", "--budget-usd", "3")
    # 30 distinct misses at once, each held 300 ms upstream so that all are in flight together;
    # max_tokens = 5 makes each request's estimate exactly its real cost ($1).
    texts = [f"[[delay:300]] budget question {i:03d}" for i in range(30)]
    codes = asyncio.run(burst(gw, key.raw, texts, max_tokens=5))
    assert codes.count(200) == 3 and codes.count(429) == 27, codes
    spent = settled(gw, 30)["tenants"]["burst"]["cost_usd"]
    assert spent == pytest.approx(3.0)
    assert upstreams["u1"].stats()["requests"] == 3


def test_overshoot_is_at_most_one_estimate_with_50_in_flight(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(basic_config(upstreams, tmp_path, extra=DOLLAR_AN_ANSWER))
    # No max_tokens: the gateway estimates from what the alias answered before (5 tokens).
    learn = create_key(gw.config_path, "learn")
    assert ask(gw, learn.raw, "warm up one").status_code == 200
    key = create_key(gw.config_path, "fifty", "--budget-usd", "3")
    texts = [f"[[delay:300]] overshoot question {i:03d}" for i in range(50)]
    codes = asyncio.run(burst(gw, key.raw, texts))
    doc = settled(gw, 51)
    spent = doc["tenants"]["fifty"]["cost_usd"]
    estimate = 1.0
    assert spent <= 3.0 + estimate, (spent, codes)
    assert codes.count(200) >= 3 and codes.count(429) >= 46, codes


def test_a_failed_request_gives_its_reservation_back(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    patient = "[routing.breaker]\nfailure_threshold = 100\n"
    config = basic_config(upstreams, tmp_path, extra=DOLLAR_AN_ANSWER + FAST_RETRY + patient)
    gw = gateway_factory(config)
    key = create_key(gw.config_path, "refund", "--budget-usd", "2")
    upstreams["u1"].control(fail_status=500)
    for i in range(5):  # each holds $1 while it runs, and costs nothing in the end
        assert ask(gw, key.raw, f"failing question {i:03d}", max_tokens=5).status_code == 502
    upstreams["u1"].reset()
    codes = [
        ask(gw, key.raw, f"paying question {i:03d}", max_tokens=5).status_code for i in range(3)
    ]
    assert codes == [200, 200, 429]


# -- 2. revoking the last key never opens the gateway -----------------------------------------


def test_revoking_the_last_key_keeps_the_gateway_closed(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(basic_config(upstreams, tmp_path))
    assert ask(gw, None, "anonymous on loopback").status_code == 200  # no key was ever made
    key = create_key(gw.config_path, "solo")
    assert wait_for(lambda: ask(gw, None, "anonymous again").status_code == 401, 3.0)
    assert ask(gw, key.raw, "with the key").status_code == 200
    revoked = keys_cli(gw.config_path, "revoke", key.raw)  # the full key, as a user holds it
    assert revoked.returncode == 0, revoked.stderr
    assert wait_for(lambda: ask(gw, key.raw, "revoked").status_code == 401, 3.0)
    for credential in (key.raw, None, "sk-sc-made-up"):
        r = ask(gw, credential, "still closed")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    gw.restart()
    assert ask(gw, None, "after a restart").status_code == 401


def test_revoke_takes_the_full_key_its_id_or_its_prefix(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(basic_config(upstreams, tmp_path))
    keys = [create_key(gw.config_path, f"t{i}") for i in range(3)]
    for key, ident in zip(keys, (keys[0].raw, keys[1].id, keys[2].raw[:12]), strict=True):
        r = keys_cli(gw.config_path, "revoke", ident)
        assert r.returncode == 0 and key.id in r.stdout, r.stderr
    unknown = keys_cli(gw.config_path, "revoke", "sk-sc-" + "x" * 43)
    assert unknown.returncode == 1 and "no key matches" in unknown.stderr


def test_a_public_bind_with_no_key_says_so_at_start(upstreams: UpstreamSet, tmp_path: Path) -> None:
    path = tmp_path / "public.toml"
    path.write_text(basic_config(upstreams, tmp_path))
    gw = Gateway(path, log_path=tmp_path / "public.log")
    gw.host = "0.0.0.0"
    try:
        gw.start()
        assert "EVERY request will be refused" in gw.logs()
        assert "anonymous access: off" in gw.logs()
        assert ask(gw, None, "from the network").status_code == 401
    finally:
        gw.stop()


# -- 3. an answer is visible to the very next request ------------------------------------------


def cache_gateway(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path, extra: str = ""
) -> Gateway:
    return gateway_factory(
        basic_config(upstreams, tmp_path, cache=True, cache_extra=extra, extra=FAST_RETRY)
    )


def test_a_hundred_repeats_sent_at_once_after_their_miss_all_hit(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = cache_gateway(upstreams, gateway_factory, tmp_path)
    client = gw.client()
    outcomes = []
    for i in range(100):
        stream = i % 2 == 1
        for _ in range(2):  # the miss, then at once the same prompt again
            raw = client.chat.completions.with_raw_response.create(
                model="m1",
                messages=[{"role": "user", "content": f"What is {i} times {i + 7}?"}],
                stream=stream,
            )
            if stream:
                for _chunk in raw.parse():  # read it all: the client has the whole answer
                    pass
            outcomes.append(raw.headers["x-sidecache"])
    assert outcomes[0::2] == ["miss"] * 100
    assert outcomes[1::2] == ["hit-exact"] * 100  # never hit-semantic 1.0000, never a miss


def readme_quickstart() -> str:
    """The README's quickstart block, exactly as a new user copies it."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Quickstart with the openai client", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "README.md has no python block under its quickstart"
    return found.group(1)


def test_the_readme_quickstart_runs_as_written(
    upstream_factory: Callable[..., Upstream], tmp_path: Path
) -> None:
    """README's two commands, then its quickstart verbatim: the example config (through
    ``OPENAI_BASE_URL``, to a fake upstream), port 8080 (another free port only if 8080 is
    taken on this machine), anonymous on loopback as a first run is."""
    upstream = upstream_factory("openai-fake")
    code = readme_quickstart()
    port = 8080 if _port_is_free(8080) else free_port()
    code = code.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    gw = Gateway(
        REPO_ROOT / "examples" / "sidecache.toml",
        env={"OPENAI_BASE_URL": upstream.base_url, "OPENAI_API_KEY": "sk-upstream"},
        port=port,
        log_path=tmp_path / "readme.log",
        cwd=tmp_path,
    )
    try:
        gw.start()
        env = {**os.environ, "NO_PROXY": "*"}
        run = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
        )
    finally:
        gw.stop()
    assert run.returncode == 0, run.stderr + gw.logs()[-3000:]
    lines = run.stdout.splitlines()
    assert lines[0] == "miss"
    assert re.fullmatch(r"hit-semantic 0\.9\d+", lines[1]), lines
    assert lines[2] == "Answer to: How do I reverse a list in Python?"
    assert lines[3] == "Answer to: How do I reverse a list in Python?"


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# -- 4. every request is accounted exactly once, whatever way it ends --------------------------


def test_an_abandoned_stream_is_billed_and_counted(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    pricing = '[pricing."gpt-x"]\ninput = 1000.0\noutput = 2000.0\n'
    gw = gateway_factory(basic_config(upstreams, tmp_path, extra=pricing))
    key = create_key(gw.config_path, "leaver", "--budget-usd", "100")
    body = {
        "model": "m1",
        "stream": True,
        "messages": [{"role": "user", "content": "[[chunk_delay:300]] tell me a slow story"}],
    }
    with gw.http(key.raw) as http, http.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        lines = (line for line in r.iter_lines() if line.startswith("data: "))
        for _ in range(3):
            next(lines)  # three chunks, then the client is gone
    doc = settled(gw, 1)
    tenant = doc["tenants"]["leaver"]
    assert tenant["requests"] == 1 and tenant["bypass"] == 1 and tenant["abandoned"] == 1
    assert tenant["cost_usd"] > 0 and tenant["usage_estimated"] == 1
    assert wait_for(lambda: upstreams["u1"].stats()["streams_cancelled"] == 1)


# -- 5. cache.verifier.cutoff does something ------------------------------------------------------


def test_a_verifier_cutoff_of_one_refuses_every_semantic_hit(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    asked, para = "How do I reverse a list in Python?", "What's the way to reverse a Python list?"
    results = {}
    for cutoff in ("", "verifier.cutoff = 1.0"):
        gw = cache_gateway(upstreams, gateway_factory, tmp_path / f"c{len(results)}", cutoff)
        outcomes = []
        for text in (asked, para, asked):
            with gw.http(None) as http:
                body = {"model": "m1", "messages": [{"role": "user", "content": text}]}
                outcomes.append(http.post("/v1/chat/completions", json=body).headers["x-sidecache"])
        results[cutoff] = outcomes
    assert results[""] == ["miss", "hit-semantic", "hit-exact"]
    assert results["verifier.cutoff = 1.0"] == ["miss", "miss", "hit-exact"]


# -- 6 and 7. slow and vanishing clients -------------------------------------------------------


def _open_with_partial_body(gw: Gateway) -> socket.socket:
    s = socket.create_connection((gw.host, gw.port))
    s.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        b'content-length: 1000\r\n\r\n{"model": '
    )
    return s


def _status_of(s: socket.socket, timeout: float) -> int | None:
    s.settimeout(timeout)
    try:
        head = s.recv(64)
    except (TimeoutError, OSError):
        return None
    found = re.match(rb"HTTP/1\.1 (\d{3})", head)
    return int(found.group(1)) if found else None


def _fds(gw: Gateway) -> int:
    assert gw.proc is not None
    return len(os.listdir(f"/proc/{gw.proc.pid}/fd"))


def test_slow_bodies_are_cut_off_and_cannot_hold_the_gateway(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(
        basic_config(
            upstreams, tmp_path, server_extra="body_timeout_seconds = 1.0\nmax_connections = 20"
        )
    )
    baseline = _fds(gw)
    socks = [_open_with_partial_body(gw) for _ in range(60)]
    t0 = time.monotonic()
    codes = [_status_of(s, 5.0) for s in socks]
    waited = time.monotonic() - t0
    for s in socks:
        s.close()
    assert codes.count(408) == 20 and codes.count(503) == 40, codes
    assert waited < 3.0  # the first twenty after the body timeout, the rest at once
    assert wait_for(lambda: _fds(gw) <= baseline + 2, 5.0), (_fds(gw), baseline)
    assert ask(gw, None, "still serving").status_code == 200


def test_clients_that_leave_are_log_lines_not_tracebacks(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(basic_config(upstreams, tmp_path, cache=True))
    for _ in range(50):  # gone while the body is being read
        _open_with_partial_body(gw).close()
    text = "[[chunk_delay:200]] a story two clients want"
    body = {"model": "m1", "stream": True, "messages": [{"role": "user", "content": text}]}
    with (
        httpx.Client(base_url=gw.url, timeout=10) as a,
        httpx.Client(base_url=gw.url) as b,
        a.stream("POST", "/v1/chat/completions", json=body) as leader,
    ):
        with b.stream("POST", "/v1/chat/completions", json=body) as follower:
            next(follower.iter_lines())
        # the follower left; the leader reads to the end
        assert any("[DONE]" in line for line in leader.iter_lines())
    doc = settled(gw, 52)
    assert doc["totals"]["abandoned"] == 51
    left = gw.access_lines(until=lambda docs: sum(d["status"] == 499 for d in docs) >= 51)
    assert sum(d["status"] == 499 for d in left) == 51
    logs = gw.logs()
    assert "Traceback" not in logs, logs[-3000:]


# -- 8. input bounds ----------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", ["inf", "1e309", "nan", "-1", "1e12", "ten"])
def test_absurd_ttls_are_refused(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path, ttl: str
) -> None:
    gw = cache_gateway(upstreams, gateway_factory, tmp_path)
    body = {"model": "m1", "messages": [{"role": "user", "content": "live forever"}]}
    with gw.http(None) as http:
        r = http.post("/v1/chat/completions", json=body, headers={"x-sidecache-ttl": ttl})
    assert r.status_code == 400 and r.json()["error"]["param"] == "x-sidecache-ttl"
    assert upstreams["u1"].stats()["requests"] == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_tokens", 9223372036854775813), ("max_completion_tokens", 10**12), ("seed", 2**70)],
)
def test_absurd_numbers_are_refused_not_forwarded(
    upstreams: UpstreamSet,
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
    field: str,
    value: int,
) -> None:
    gw = gateway_factory(basic_config(upstreams, tmp_path))
    r = ask(gw, None, "count to a lot", **{field: value})
    assert r.status_code == 400 and r.json()["error"]["param"] == field
    assert upstreams["u1"].stats()["requests"] == 0


def test_unknown_model_names_do_not_grow_metrics(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(basic_config(upstreams, tmp_path))
    for name in ("nope-1", "nope-2", "nope-3"):
        assert ask(gw, None, "hello", model=name).status_code == 404
    with gw.http(None) as http:
        metrics = http.get("/metrics").text
    assert "nope-" not in metrics
    assert 'model="_unknown"' in metrics


def test_pass_through_mode_remembers_no_names(
    upstream_factory: Callable[..., Upstream], tmp_path: Path
) -> None:
    upstream = upstream_factory("pt")
    gw = Gateway(
        None,  # no config file: pass-through from the environment
        env={"OPENAI_BASE_URL": upstream.base_url, "SIDECACHE_DATA_DIR": str(tmp_path / "d")},
        log_path=tmp_path / "pt.log",
    )
    try:
        gw.start()
        assert ask(gw, None, "hi", model="gpt-y").status_code == 200
        assert ask(gw, None, "[[status:404]] hi", model="made-up-model").status_code == 404
        with gw.http(None) as http:
            listed = [m["id"] for m in http.get("/v1/models").json()["data"]]
            metrics = http.get("/metrics").text
        assert "made-up-model" not in listed and "made-up-model" not in metrics
        assert {"gpt-x", "gpt-y"} <= set(listed)  # what the upstream itself lists
    finally:
        gw.stop()


# -- 9. private files ---------------------------------------------------------------------------


def test_the_data_directory_is_private(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = cache_gateway(upstreams, gateway_factory, tmp_path)
    create_key(gw.config_path, "private")
    assert ask(gw, None, "keep this private").status_code == 401
    data = tmp_path / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = [
        p for p in data.iterdir() if p.suffix in (".db", ".db-wal", ".db-shm") or "db" in p.name
    ]
    assert {"cache.db", "state.db"} <= {p.name for p in files}
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


# -- 10. errors that help ------------------------------------------------------------------------


def test_errors_name_what_failed_and_when_to_retry(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    breaker = "[routing.breaker]\nfailure_threshold = 1\ncooldown_seconds = 20\n"
    gw = gateway_factory(basic_config(upstreams, tmp_path, extra=FAST_RETRY + breaker))
    u1 = upstreams["u1"]
    u1.control(fail_status=500)
    bad = ask(gw, None, "fail please")
    assert bad.status_code == 502
    message = bad.json()["error"]["message"]
    assert f"u1 (127.0.0.1:{u1.port})" in message and "sk-up-u1" not in message
    closed = ask(gw, None, "circuit open")  # u1's circuit opened on that failure
    assert closed.status_code == 503
    assert 1 <= int(closed.headers["retry-after"]) <= 20
    missing = ask(gw, None, "which models?", model="gpt-4o")
    assert missing.status_code == 404 and "m, m1" in missing.json()["error"]["message"]
