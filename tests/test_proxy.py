"""The gateway as a proxy (cache off), over real HTTP with the real openai SDK."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from support import Gateway, basic_config, free_port, write_config
from support.counters import gateway_stats, wait_for

PROXY_EXTRA = """
[routing.retry]
backoff_base = 0.01
backoff_max = 0.05

[routing.breaker]
failure_threshold = 50

[providers.u1slow]
base_url = "{u1}"
api_key = "sk-up-u1"
timeouts = {{connect = 1.0, first_byte = 0.5, total = 5.0}}

[providers.nowhere]
base_url = "http://127.0.0.1:{dead}/v1"
api_key = "sk-none"
timeouts = {{connect = 0.5}}

[models.slow]
targets = [{{target = "u1slow/gpt-x"}}]

[models.fb]
strategy = "fallback"
targets = [{{target = "nowhere/gpt-x"}}, {{target = "u2/gpt-x"}}]

[models.w]
strategy = "weighted"
targets = [{{target = "u1/gpt-x", weight = 9}}, {{target = "u2/gpt-x", weight = 1}}]
"""


@pytest.fixture(scope="module")
def gw(upstreams, anthropic_upstream, tmp_path_factory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("proxy")
    extra = PROXY_EXTRA.format(u1=upstreams["u1"].base_url, dead=free_port())
    text = basic_config(
        upstreams,
        tmp,
        anthropic=anthropic_upstream,
        extra=extra,
        server_extra="max_body_bytes = 4096",
    )
    g = Gateway(write_config(tmp, text)).start()
    yield g
    g.stop()


def ask(client: openai.OpenAI, text: str, model: str = "m", **kw):
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], **kw
    )


def test_health_and_models(gw: Gateway) -> None:
    with gw.http() as http:
        assert http.get("/healthz").json()["status"] == "ok"
        assert http.get("/readyz").status_code == 200
    ids = {m.id for m in gw.client().models.list()}
    assert {"m", "m1", "claude", "fb", "slow", "w"} <= ids


def test_non_stream_round_trip(gw: Gateway, upstreams) -> None:
    raw = gw.client().chat.completions.with_raw_response.create(
        model="m1", messages=[{"role": "user", "content": "hello there"}]
    )
    r = raw.parse()
    assert r.choices[0].message.content == "Answer to: hello there"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None and r.usage.completion_tokens > 0
    assert raw.headers["x-sidecache"] == "bypass"
    assert raw.headers["x-request-id"]


def test_stream_round_trip_with_usage(gw: Gateway, upstreams) -> None:
    chunks = list(
        ask(
            gw.client(),
            "stream me please",
            "m1",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Answer to: stream me please"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


def test_stream_without_usage_has_no_usage_chunk(gw: Gateway, upstreams) -> None:
    with (
        gw.http() as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "m1", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        ) as r,
    ):
        body = r.read().decode()
    assert r.headers["content-type"].startswith("text/event-stream")
    assert '"usage"' not in body
    assert body.rstrip().endswith("data: [DONE]")


def test_async_client_stream_and_non_stream(gw: Gateway, upstreams) -> None:
    async def main() -> tuple[str, str]:
        client = gw.async_client()
        r = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "async one"}]
        )
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "async two"}], stream=True
        )
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        await client.close()
        return r.choices[0].message.content or "", "".join(parts)

    one, two = asyncio.run(main())
    assert one == "Answer to: async one"
    assert two == "Answer to: async two"


def test_unknown_fields_pass_through(gw: Gateway, upstreams) -> None:
    ask(gw.client(), "extra", "m1", extra_body={"my_field": {"a": [1, 2]}}, seed=7)
    body = upstreams["u1"].last_request()["body"]
    assert body["my_field"] == {"a": [1, 2]}
    assert body["seed"] == 7
    assert body["model"] == "gpt-x"


def test_round_robin_spreads_over_three_targets(gw: Gateway, upstreams) -> None:
    client = gw.client()
    for i in range(30):
        ask(client, f"spread {i}")
    counts = [upstreams[n].stats()["requests"] for n in ("u1", "u2", "u3")]
    assert counts == [10, 10, 10]


def test_weighted_prefers_heavier_target(gw: Gateway, upstreams) -> None:
    client = gw.client()
    for i in range(40):
        ask(client, f"weighted {i}", "w")
    u1, u2 = upstreams["u1"].stats()["requests"], upstreams["u2"].stats()["requests"]
    assert u1 + u2 == 40 and u1 > 2 * u2


def test_fallback_when_one_target_fails(gw: Gateway, upstreams) -> None:
    upstreams["u2"].control(fail_status=500)
    client = gw.client()
    for i in range(9):
        assert ask(client, f"fallback {i}").choices[0].message.content == f"Answer to: fallback {i}"
    assert upstreams["u1"].stats()["requests"] + upstreams["u3"].stats()["requests"] == 9


def test_fallback_when_target_is_unreachable(gw: Gateway, upstreams) -> None:
    r = ask(gw.client(), "nobody home", "fb")
    assert r.choices[0].message.content == "Answer to: nobody home"
    assert upstreams["u2"].stats()["requests"] == 1


def test_retry_after_is_honoured(gw: Gateway, upstreams) -> None:
    upstreams["u1"].control(fail_status=429, retry_after=1, count=1)
    t0 = time.monotonic()
    r = ask(gw.client(), "patience", "m1")
    elapsed = time.monotonic() - t0
    assert r.choices[0].message.content == "Answer to: patience"
    assert elapsed >= 0.95, elapsed
    assert upstreams["u1"].stats()["requests"] == 2


def test_no_retry_after_first_byte(gw: Gateway, upstreams) -> None:
    stream = ask(gw.client(), "cut me [[cut:2]]", "m1", stream=True)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received).startswith("Answer")
    # nothing in flight any more: the cut stream was not retried after its first byte
    assert wait_for(lambda: gateway_stats(gw)["in_flight"] == 0)
    assert upstreams["u1"].stats()["requests"] == 1


def test_error_event_mid_stream_reaches_client(gw: Gateway, upstreams) -> None:
    with pytest.raises(openai.APIError):
        for _ in ask(gw.client(), "boom [[error_event]]", "m1", stream=True):
            pass
    assert upstreams["u1"].stats()["requests"] == 1


def test_malformed_sse_is_an_error(gw: Gateway, upstreams) -> None:
    with pytest.raises(openai.APIError):
        for _ in ask(gw.client(), "garbage [[malformed]]", "m1", stream=True):
            pass


def test_all_targets_failed_is_502_with_reason(gw: Gateway, upstreams) -> None:
    upstreams["u1"].control(fail_status=503)
    with pytest.raises(openai.APIStatusError) as info:
        ask(gw.client(), "doomed", "m1")
    assert info.value.status_code == 502
    assert "503" in info.value.message
    assert upstreams["u1"].stats()["requests"] == 3  # retry.max_attempts


def test_upstream_timeout_is_504(gw: Gateway, upstreams) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        ask(gw.client(), "wait [[delay:3000]]", "slow")
    assert info.value.status_code == 504
    assert info.value.body["code"] == "upstream_timeout"


def test_upstream_client_error_is_not_retried(gw: Gateway, upstreams) -> None:
    with pytest.raises(openai.BadRequestError):
        ask(gw.client(), "bad [[status:400]]", "m1")
    assert upstreams["u1"].stats()["requests"] == 1


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b'{"model": "m1", "messages": [', 400, "invalid_json"),
        (b'{"model": "m1"}', 400, None),
        (b'{"model": "m1", "messages": [{"role": "wizard", "content": "x"}]}', 400, None),
        (b'{"model": "m1", "messages": [], "stream": true}', 400, None),
        (
            b'{"model": "m1", "temperature": 9, "messages": [{"role": "user", "content": "x"}]}',
            400,
            None,
        ),
        (b"[1, 2]", 400, None),
        (
            b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "model_not_found",
        ),
    ],
)
def test_bad_input_gets_openai_error(gw: Gateway, content: bytes, status: int, code) -> None:
    with gw.http() as http:
        r = http.post(
            "/v1/chat/completions", content=content, headers={"content-type": "application/json"}
        )
    assert r.status_code == status
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"]
    if code:
        assert err["code"] == code


def test_unknown_alias_via_sdk_is_404(gw: Gateway) -> None:
    with pytest.raises(openai.NotFoundError):
        ask(gw.client(), "x", "no-such-model")


def test_body_over_limit_is_413(gw: Gateway) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        ask(gw.client(), "x" * 5000, "m1")
    assert info.value.status_code == 413


def test_unknown_path_and_method_are_openai_errors(gw: Gateway) -> None:
    with gw.http() as http:
        r = http.get("/v1/nothing")
        assert r.status_code == 404 and "error" in r.json()
        r = http.get("/v1/chat/completions")
        assert r.status_code == 405 and "error" in r.json()


def test_bad_gateway_headers_are_400(gw: Gateway) -> None:
    with pytest.raises(openai.BadRequestError):
        ask(gw.client(), "x", "m1", extra_headers={"x-sidecache-threshold": "1.5"})


def test_anthropic_translation_non_stream(gw: Gateway, anthropic_upstream) -> None:
    r = gw.client().chat.completions.create(
        model="claude",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "what is up"}]},
        ],
        max_tokens=50,
        stop=["END"],
        temperature=0.2,
    )
    assert r.choices[0].message.content == "Answer to: what is up"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    sent = anthropic_upstream.last_request()
    body = sent["body"]
    assert body["model"] == "claude-x"
    assert body["system"] == "be brief"
    assert body["max_tokens"] == 50
    assert body["stop_sequences"] == ["END"]
    assert body["temperature"] == 0.2
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "what is up"}]}
    ]
    assert sent["headers"]["anthropic-version"]


def test_anthropic_translation_stream(gw: Gateway, anthropic_upstream) -> None:
    chunks = list(
        gw.client().chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "one two three four"}],
            max_tokens=3,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Answer to: one"
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["length"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_anthropic_error_before_first_byte_is_502(gw: Gateway, anthropic_upstream) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        ask(gw.client(), "overloaded [[status:529]]", "claude")
    assert info.value.status_code == 502


def test_client_disconnect_cancels_upstream_stream(gw: Gateway, upstreams) -> None:
    up = upstreams["u1"]
    with (
        gw.http() as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "model": "m1",
                "stream": True,
                "messages": [{"role": "user", "content": "a b c d e f g h [[chunk_delay:300]]"}],
            },
        ) as r,
    ):
        lines = r.iter_lines()
        got = [next(lines) for _ in range(3)]
        assert any(line.startswith("data: ") for line in got)
    assert wait_for(lambda: up.stats()["streams_cancelled"] >= 1), up.stats()
    assert up.stats()["streams_completed"] == 0


def test_client_disconnect_cancels_non_stream_request(gw: Gateway, upstreams) -> None:
    up = upstreams["u1"]
    with gw.http(timeout=0.5) as http, pytest.raises(httpx.ReadTimeout):
        http.post(
            "/v1/chat/completions",
            json={"model": "m1", "messages": [{"role": "user", "content": "[[hang]]"}]},
        )
    assert wait_for(lambda: up.stats()["in_flight"] == 0), up.stats()


def test_circuit_breaker_opens_and_recovers(upstreams, gateway_factory, tmp_path: Path) -> None:
    extra = """
[routing.breaker]
failure_threshold = 2
cooldown_seconds = 1.0

[routing.retry]
backoff_base = 0.0

[models.fo]
strategy = "fallback"
targets = [{target = "u1/gpt-x"}, {target = "u2/gpt-x"}]
"""
    g = gateway_factory(basic_config(upstreams, tmp_path, extra=extra))
    client = g.client()
    u1, u2 = upstreams["u1"], upstreams["u2"]
    u1.control(fail_status=500)
    for i in range(5):
        assert ask(client, f"breaker {i}", "fo").choices[0].message.content
    # two failures open u1's circuit; the other requests go straight to u2
    assert u1.stats()["requests"] == 2
    assert u2.stats()["requests"] == 5
    u1.reset()
    u2.reset()
    time.sleep(1.1)
    ask(client, "probe", "fo")  # half-open probe succeeds and closes the circuit
    ask(client, "after", "fo")
    assert u1.stats()["requests"] == 2
    assert u2.stats()["requests"] == 0


def test_an_upstream_behind_the_environments_proxy(
    upstreams, gateway_factory, tmp_path: Path
) -> None:
    """``HTTP_PROXY`` reaches the upstream calls: the provider's host does not resolve, and the
    answer comes from the proxy named in the environment (here the fake upstream itself, which
    takes the proxy's absolute-form request line)."""
    u1 = upstreams["u1"]
    config = basic_config(upstreams, tmp_path).replace(u1.base_url, "http://llm.invalid/v1")
    proxy = u1.base_url.removesuffix("/v1")
    g = gateway_factory(config, env={"HTTP_PROXY": proxy, "NO_PROXY": "", "no_proxy": ""})
    before = u1.stats()["requests"]
    assert ask(g.client(), "through the proxy", "m1").choices[0].message.content
    assert u1.stats()["requests"] == before + 1
