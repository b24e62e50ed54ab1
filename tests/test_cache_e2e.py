"""The semantic cache through the real gateway: real model, real FAISS, real SQLite, real HTTP.

An answer is visible to the very next request: no test waits between storing and looking up.

One gateway serves most tests; each test works in its own ``x-sidecache-namespace`` so entries
never leak between tests (which is itself the namespace isolation under test).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from support import Gateway, basic_config, write_config
from support.counters import wait_for

from sidecache.cache.verifier import model_file

ADMIN = "sk-admin-test"
CLI = [sys.executable, "-m", "sidecache"]
ONNX_DIR = Path(
    os.environ.get("SIDECACHE_TEST_ONNX_DIR") or Path.home() / ".cache" / "sidecache-test" / "onnx"
)

CACHE_EXTRA = f"""
sweep_interval_seconds = 0.2
[cache.embedder]
onnx_dir = "{ONNX_DIR}"
"""

PARA_A = "How do I reverse a list in Python?"
PARA_B = "What's the way to reverse a Python list?"
UNRELATED = "What is the capital city of Australia?"


def cache_config(upstreams, tmp: Path, *, server_extra: str = "", cache_extra: str = "") -> str:
    return basic_config(
        upstreams,
        tmp,
        cache=True,
        server_extra=f'admin_key = "{ADMIN}"\n' + server_extra,
        cache_extra=cache_extra + CACHE_EXTRA,
        extra="[routing.retry]\nbackoff_base = 0.0\n",
    )


@pytest.fixture(scope="module")
def gw(upstreams, tmp_path_factory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("cache")
    g = Gateway(write_config(tmp, cache_config(upstreams, tmp))).start()
    yield g
    g.stop()


@pytest.fixture
def ns() -> str:
    return "t-" + uuid.uuid4().hex[:10]


def chat(gw: Gateway, text: str, ns: str, *, model: str = "m1", system: str | None = None, **kw):
    """(parsed completion, response headers)."""
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": text}
    ]
    headers = {"x-sidecache-namespace": ns, **kw.pop("extra_headers", {})}
    raw = gw.client().chat.completions.with_raw_response.create(
        model=model, messages=messages, extra_headers=headers, **kw
    )
    return raw.parse(), raw.headers


def outcome(gw: Gateway, text: str, ns: str, **kw) -> str:
    return chat(gw, text, ns, **kw)[1]["x-sidecache"]


def admin(gw: Gateway) -> httpx.Client:
    return gw.http(api_key=ADMIN)


def test_exact_then_paraphrase_hit_unrelated_miss(gw: Gateway, upstreams, ns: str) -> None:
    r, h = chat(gw, PARA_A, ns)
    assert h["x-sidecache"] == "miss"
    r2, h2 = chat(gw, PARA_A, ns)
    assert h2["x-sidecache"] == "hit-exact"
    assert r2.choices[0].message.content == r.choices[0].message.content
    assert r2.id != r.id
    r3, h3 = chat(gw, PARA_B, ns)
    assert h3["x-sidecache"] == "hit-semantic", h3
    assert float(h3["x-sidecache-similarity"]) >= 0.8
    assert h3["x-sidecache-entry"] == h2["x-sidecache-entry"]
    assert r3.choices[0].message.content == f"Answer to: {PARA_A}"
    assert outcome(gw, UNRELATED, ns) == "miss"
    assert upstreams["u1"].stats()["requests"] == 2


def test_threshold_header_can_refuse_a_paraphrase(gw: Gateway, ns: str) -> None:
    chat(gw, PARA_A, ns)
    assert outcome(gw, PARA_B, ns, extra_headers={"x-sidecache-threshold": "0.999"}) == "miss"


def test_different_system_prompt_never_hits(gw: Gateway, ns: str) -> None:
    chat(gw, PARA_A, ns, system="You are terse.")
    assert outcome(gw, PARA_A, ns, system="You are terse.") == "hit-exact"
    assert outcome(gw, PARA_A, ns, system="You are verbose.") == "miss"
    assert outcome(gw, PARA_A, ns) == "miss"


def test_different_namespace_and_model_never_hit(gw: Gateway, ns: str) -> None:
    chat(gw, PARA_A, ns)
    assert outcome(gw, PARA_A, ns + "-other") == "miss"
    assert outcome(gw, PARA_A, ns, model="m") == "miss"


def test_different_sampling_params_never_hit(gw: Gateway, ns: str) -> None:
    chat(gw, PARA_A, ns, temperature=0.0)
    assert outcome(gw, PARA_A, ns, temperature=0.0) == "hit-exact"
    assert outcome(gw, PARA_A, ns, temperature=1.0) == "miss"


def test_streamed_hit_equals_original(gw: Gateway, upstreams, ns: str) -> None:
    text = "Explain the difference between TCP and UDP in networking"
    first = chat(gw, text, ns)[0].choices[0].message.content
    with gw.client().chat.completions.with_streaming_response.create(
        model="m1",
        messages=[{"role": "user", "content": text}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-sidecache-namespace": ns},
    ) as resp:
        assert resp.headers["x-sidecache"] == "hit-exact"
        chunks = list(resp.parse())
    content = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(content) == first
    assert len([c for c in content if c]) > 1  # replayed in pieces, not one blob
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert upstreams["u1"].stats()["requests"] == 1


def test_streamed_miss_is_stored_and_served_as_json(gw: Gateway, ns: str) -> None:
    text = "Write a haiku about autumn leaves falling"
    stream = gw.client().chat.completions.create(
        model="m1",
        messages=[{"role": "user", "content": text}],
        stream=True,
        extra_headers={"x-sidecache-namespace": ns},
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    r, h = chat(gw, text, ns)
    assert h["x-sidecache"] == "hit-exact"
    assert r.choices[0].message.content == streamed


def test_cut_stream_is_not_stored(gw: Gateway, ns: str) -> None:
    text = "Tell me a long story [[cut:2]]"
    with pytest.raises(openai.APIError):
        for _ in gw.client().chat.completions.create(
            model="m1",
            messages=[{"role": "user", "content": text}],
            stream=True,
            extra_headers={"x-sidecache-namespace": ns},
        ):
            pass
    # the very next request: a cut stream is never stored, so it is cut again
    with pytest.raises(openai.APIError):
        for _ in gw.client().chat.completions.create(
            model="m1",
            messages=[{"role": "user", "content": text}],
            stream=True,
            extra_headers={"x-sidecache-namespace": ns},
        ):
            pass
    with admin(gw) as http:
        data = http.get("/admin/cache/entries", params={"limit": 1000}).json()["data"]
    assert not [e for e in data if e.get("namespace") == ns]


@pytest.mark.parametrize("status", [429, 500])
def test_failed_upstream_is_not_stored(gw: Gateway, upstreams, ns: str, status: int) -> None:
    upstreams["u1"].control(fail_status=status, retry_after=0 if status == 429 else None)
    with pytest.raises(openai.APIStatusError):
        chat(gw, PARA_A, ns)
    upstreams["u1"].reset()
    assert outcome(gw, PARA_A, ns) == "miss"  # the very next request


def test_no_cache_skips_lookup_but_stores(gw: Gateway, upstreams, ns: str) -> None:
    chat(gw, PARA_A, ns)
    assert outcome(gw, PARA_A, ns, extra_headers={"cache-control": "no-cache"}) == "miss"
    assert upstreams["u1"].stats()["requests"] == 2
    fresh = "Summarise the plot of Hamlet in two sentences"
    chat(gw, fresh, ns, extra_headers={"cache-control": "no-cache"})
    assert outcome(gw, fresh, ns) == "hit-exact"


def test_no_store_is_honoured(gw: Gateway, ns: str) -> None:
    chat(gw, PARA_A, ns, extra_headers={"cache-control": "no-store"})
    assert outcome(gw, PARA_A, ns) == "miss"  # the very next request


def test_uncacheable_requests_bypass(gw: Gateway, ns: str) -> None:
    _, h = chat(gw, PARA_A, ns, n=2)
    assert h["x-sidecache"] == "bypass"
    image = [
        {"type": "text", "text": "what is in this picture"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    raw = gw.client().chat.completions.with_raw_response.create(
        model="m1",
        messages=[{"role": "user", "content": image}],
        extra_headers={"x-sidecache-namespace": ns},
    )
    assert raw.headers["x-sidecache"] == "bypass"


def test_ttl_expiry(gw: Gateway, ns: str) -> None:
    chat(gw, PARA_A, ns, extra_headers={"x-sidecache-ttl": "1"})
    assert outcome(gw, PARA_A, ns) == "hit-exact"
    time.sleep(1.3)
    assert outcome(gw, PARA_A, ns) == "miss"


def test_single_flight_coalesces_identical_misses(gw: Gateway, upstreams, ns: str) -> None:
    text = "Explain quantum entanglement simply [[delay:400]]"

    async def main() -> list[str]:
        client = gw.async_client()
        calls = [
            client.chat.completions.create(
                model="m1",
                messages=[{"role": "user", "content": text}],
                extra_headers={"x-sidecache-namespace": ns},
            )
            for _ in range(10)
        ]
        results = await asyncio.gather(*calls)
        await client.close()
        return [r.choices[0].message.content or "" for r in results]

    answers = asyncio.run(main())
    assert len(set(answers)) == 1
    assert answers[0].startswith("Answer to: Explain quantum entanglement simply")
    assert upstreams["u1"].stats()["requests"] == 1


def test_single_flight_coalesces_streams(gw: Gateway, upstreams, ns: str) -> None:
    text = "Describe the water cycle [[chunk_delay:30]]"

    async def one(client: openai.AsyncOpenAI) -> str:
        stream = await client.chat.completions.create(
            model="m1",
            messages=[{"role": "user", "content": text}],
            stream=True,
            extra_headers={"x-sidecache-namespace": ns},
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async def main() -> list[str]:
        client = gw.async_client()
        out = await asyncio.gather(*(one(client) for _ in range(10)))
        await client.close()
        return out

    answers = asyncio.run(main())
    assert len(set(answers)) == 1 and answers[0].startswith("Answer to: Describe the water cycle")
    assert upstreams["u1"].stats()["requests"] == 1


def test_admin_endpoints_need_the_admin_key(gw: Gateway, ns: str) -> None:
    chat(gw, PARA_A, ns)
    with gw.http(api_key=None) as http:
        for method, path in [
            ("GET", "/admin/cache/stats"),
            ("GET", "/admin/cache/entries"),
            ("DELETE", "/admin/cache/entries/1"),
            ("POST", "/admin/cache/flush"),
        ]:
            r = http.request(method, path)
            assert r.status_code == 401, (method, path)
            assert r.json()["error"]["message"]
    with gw.http(api_key="sk-wrong") as http:
        assert http.get("/admin/cache/stats").status_code == 401
    with admin(gw) as http:
        stats = http.get("/admin/cache/stats").json()
        assert stats["entries"] >= 1
        data = http.get("/admin/cache/entries", params={"limit": 1000}).json()["data"]
        mine = [e for e in data if e["namespace"] == ns]
        assert mine[0]["prompt"] == PARA_A
        entry_id = mine[0]["id"]
        assert http.delete(f"/admin/cache/entries/{entry_id}").status_code == 200
        assert http.delete(f"/admin/cache/entries/{entry_id}").status_code == 404
        assert http.get("/admin/cache/entries", params={"limit": "x"}).status_code == 400
    assert outcome(gw, PARA_A, ns) == "miss"
    with admin(gw) as http:
        r = http.post("/admin/cache/flush", json={"namespace": ns})
        assert r.status_code == 200 and r.json()["deleted"] >= 1
    assert outcome(gw, PARA_A, ns) == "miss"


def test_restart_and_kill_keep_entries(upstreams, gateway_factory, tmp_path: Path) -> None:
    g = gateway_factory(cache_config(upstreams, tmp_path))
    ns = "restart"
    chat(g, PARA_A, ns)
    g.restart()
    assert outcome(g, PARA_A, ns) == "hit-exact"
    assert outcome(g, PARA_B, ns) == "hit-semantic"
    chat(g, UNRELATED, ns)
    # the durable write follows the answer by a millisecond or so: kill -9 once it is done
    with admin(g) as http:
        assert wait_for(lambda: http.get("/admin/cache/stats").json()["pending_writes"] == 0)
    g.kill()
    g.start()
    assert outcome(g, UNRELATED, ns) == "hit-exact"
    assert upstreams["u1"].stats()["requests"] == 2


def test_lru_eviction(upstreams, gateway_factory, tmp_path: Path) -> None:
    g = gateway_factory(cache_config(upstreams, tmp_path, cache_extra="max_entries = 3\n"))
    ns = "lru"
    prompts = [
        "How tall is Mount Everest?",
        "Who wrote the novel Moby Dick?",
        "What is the boiling point of water at sea level?",
    ]
    for p in prompts:
        chat(g, p, ns)
    assert outcome(g, prompts[0], ns) == "hit-exact"  # prompts[1] is now least recent
    time.sleep(0.1)
    chat(g, "Which planet is closest to the sun?", ns)
    with admin(g) as http:  # the fourth entry is written, then the sweep evicts one
        assert wait_for(lambda: http.get("/admin/cache/stats").json()["evicted"] >= 1)
        assert http.get("/admin/cache/stats").json()["entries"] == 3
    assert outcome(g, prompts[0], ns) == "hit-exact"
    assert outcome(g, prompts[1], ns) == "miss"


def test_tenants_never_share_entries(upstreams, gateway_factory, tmp_path: Path) -> None:
    text = cache_config(upstreams, tmp_path)
    cfg = write_config(tmp_path, text, "tenants.toml")
    keys = {}
    for tenant in ("acme", "globex"):
        out = subprocess.run(
            [*CLI, "keys", "--config", str(cfg), "create", "--tenant", tenant],
            capture_output=True,
            text=True,
            check=True,
        )
        keys[tenant] = out.stdout.strip()
    g = gateway_factory(cfg)
    acme, globex = g.client(keys["acme"]), g.client(keys["globex"])
    msgs = [{"role": "user", "content": PARA_A}]
    acme.chat.completions.create(model="m1", messages=msgs)
    raw = acme.chat.completions.with_raw_response.create(model="m1", messages=msgs)
    assert raw.headers["x-sidecache"] == "hit-exact"
    raw = globex.chat.completions.with_raw_response.create(model="m1", messages=msgs)
    assert raw.headers["x-sidecache"] == "miss"
    with g.http(api_key=keys["acme"]) as http:
        assert http.get("/admin/cache/entries").status_code == 401


def test_a_verifier_for_other_vectors_judges_by_text(
    upstreams, gateway_factory, tmp_path: Path
) -> None:
    """A verifier trained next to another embedder (here: its file says so) must not score this
    embedder's vectors with its projection: the gateway says so at start and keeps verifying."""
    spec = json.loads(model_file.read_model_bytes())  # the file shipped in the package
    spec.setdefault("meta", {})["vectors"] = "model:another-embedder"
    other = tmp_path / "verifier_other.json"
    other.write_text(json.dumps(spec))
    g = gateway_factory(
        cache_config(upstreams, tmp_path, cache_extra=f'verifier = {{ model_path = "{other}" }}\n')
    )
    log = g.log_path.read_text()
    assert "trained on vectors of model:another-embedder" in log and "text alone" in log
    ns = "other-vectors"
    chat(g, "How do I enable two-factor authentication on GitHub?", ns)
    assert outcome(g, "How do I disable two-factor authentication on GitHub?", ns) == "miss"
    chat(g, PARA_A, ns)
    assert outcome(g, PARA_B, ns) == "hit-semantic"
