"""The fake upstream itself, judged by the official ``openai`` SDK and raw httpx.

If these pass, a gateway test that fails is about the gateway: the upstream answers exactly like
OpenAI / Anthropic do and each injected fault looks the way it does in the wild.
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from support import Gateway, ProcessExited, Upstream, UpstreamSet, basic_config, write_config
from support.counters import wait_for

from sidecache import config as config_mod

USER = "What is the capital of France?"
EXPECTED = "Answer to: What is the capital of France?"


def client(up: Upstream, timeout: float = 10.0) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=up.base_url,
        api_key="sk-test-key",
        max_retries=0,
        timeout=timeout,
        http_client=openai.DefaultHttpxClient(trust_env=False),
    )


def ask(text: str, **kwargs: Any) -> dict[str, Any]:
    return {"model": "gpt-x", "messages": [{"role": "user", "content": text}], **kwargs}


def sse(lines: Iterator[str]) -> list[tuple[str, str]]:
    """(event, data) pairs from SSE lines; event is "" when the server named none."""
    events: list[tuple[str, str]] = []
    event, data = "", list[str]()
    for line in lines:
        if not line:
            if data:
                events.append((event, "\n".join(data)))
            event, data = "", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    return events


@pytest.fixture
def u1(upstreams: UpstreamSet) -> Upstream:
    return upstreams["u1"]


# ---------------------------------------------------------------------------------------------
# OpenAI kind: answers.


def test_non_stream_is_a_full_deterministic_chat_completion(upstreams: UpstreamSet) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": USER},
    ]
    raw = client(upstreams["u1"]).chat.completions.with_raw_response.create(
        model="gpt-x", messages=messages
    )
    assert raw.headers["x-upstream-name"] == "u1"
    done = raw.parse()
    assert done.object == "chat.completion"
    assert done.id.startswith("chatcmpl-")
    assert done.model == "gpt-x"
    assert done.system_fingerprint == "fp_u1"
    assert done.choices[0].message.role == "assistant"
    assert done.choices[0].message.content == EXPECTED
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (3 + 6, 8)
    assert done.usage.total_tokens == 17
    other = client(upstreams["u3"]).chat.completions.create(model="gpt-y", messages=messages)
    assert other.choices[0].message.content == EXPECTED  # the same whichever server answers
    assert other.model == "gpt-y"


def test_content_parts_are_joined_and_max_tokens_truncates(u1: Upstream) -> None:
    parts: Any = [{"type": "text", "text": "What is"}, {"type": "text", "text": "2+2?"}]
    done = client(u1).chat.completions.create(
        model="gpt-x", messages=[{"role": "user", "content": parts}]
    )
    assert done.choices[0].message.content == "Answer to: What is 2+2?"
    short = client(u1).chat.completions.create(**ask(USER, max_tokens=3))
    assert short.choices[0].message.content == "Answer to: What"
    assert short.choices[0].finish_reason == "length"
    assert short.usage is not None and short.usage.completion_tokens == 3


def test_stream_is_shaped_like_openai(u1: Upstream) -> None:
    stream = client(u1).chat.completions.create(
        **ask(USER, stream=True, stream_options={"include_usage": True})
    )
    chunks = list(stream)
    first, *middle, final, usage = chunks
    assert first.choices[0].delta.role == "assistant" and first.choices[0].delta.content == ""
    assert [c.choices[0].delta.content for c in middle[:2]] == ["Answer", " to:"]
    assert "".join(c.choices[0].delta.content or "" for c in middle) == EXPECTED
    assert all(c.choices[0].finish_reason is None for c in [first, *middle])
    assert final.choices[0].finish_reason == "stop" and final.choices[0].delta.content is None
    assert usage.choices == [] and usage.usage is not None
    assert (usage.usage.prompt_tokens, usage.usage.completion_tokens) == (6, 8)
    assert all(c.usage is None for c in chunks[:-1])
    assert {c.id for c in chunks} == {first.id}
    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-x" for c in chunks)
    assert all(c.system_fingerprint == "fp_u1" for c in chunks)

    with httpx.stream(
        "POST", f"{u1.base_url}/chat/completions", json=ask(USER, stream=True), trust_env=False
    ) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = sse(resp.iter_lines())
    assert events[-1] == ("", "[DONE]")
    assert all("usage" not in json.loads(d) for _, d in events[:-1])  # only when asked
    assert json.loads(events[-2][1])["choices"][0]["finish_reason"] == "stop"


def test_unknown_fields_are_recorded_and_secrets_redacted(u1: Upstream) -> None:
    client(u1).chat.completions.create(
        **ask(USER), extra_body={"my_vendor_flag": {"x": 1}}, extra_headers={"x-trace": "t1"}
    )
    (req,) = u1.requests(last=5)
    assert req["path"] == "/v1/chat/completions"
    assert req["body"]["my_vendor_flag"] == {"x": 1}
    assert req["headers"]["authorization"] == "Bearer sk-tes...[11]"
    assert req["headers"]["x-trace"] == "t1"
    assert u1.stats()["by_model"] == {"gpt-x": 1}


# ---------------------------------------------------------------------------------------------
# OpenAI kind: faults.


def test_status_directive_with_retry_after(u1: Upstream) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client(u1).chat.completions.create(**ask("hi [[status:429:retry_after=2]]"))
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.response.headers["x-upstream-name"] == "u1"
    error = info.value.response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    with pytest.raises(openai.InternalServerError) as info5:
        client(u1).chat.completions.create(**ask("hi [[status:503]]"))
    assert info5.value.status_code == 503
    assert "retry-after" not in info5.value.response.headers
    assert u1.stats()["errors_injected"] == 2


def test_fail_on_and_slow_on_pick_one_server(upstreams: UpstreamSet) -> None:
    text = "hi [[fail_on:u2:429:retry_after=1]] [[slow_on:u3:300]]"
    assert client(upstreams["u1"]).chat.completions.create(**ask(text)).choices[0].message.content
    with pytest.raises(openai.RateLimitError) as info:
        client(upstreams["u2"]).chat.completions.create(**ask(text))
    assert info.value.response.headers["retry-after"] == "1"
    with pytest.raises(openai.InternalServerError):
        client(upstreams["u2"]).chat.completions.create(**ask("hi [[fail_on:u2]]"))
    start = time.perf_counter()
    done = client(upstreams["u3"]).chat.completions.create(**ask(text))
    assert time.perf_counter() - start >= 0.3
    assert done.choices[0].message.content == "Answer to: hi"  # directives removed


def test_delay_holds_the_first_byte(u1: Upstream) -> None:
    start = time.perf_counter()
    client(u1).chat.completions.create(**ask("hi [[delay:200]]"))
    assert time.perf_counter() - start >= 0.2


def test_cut_drops_the_stream_without_finish(u1: Upstream) -> None:
    got: list[Any] = []
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        for chunk in client(u1).chat.completions.create(**ask(f"{USER} [[cut:2]]", stream=True)):
            got.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in got) == "Answer to:"
    assert all(c.choices[0].finish_reason is None for c in got)
    with pytest.raises(openai.APIConnectionError):
        client(u1).chat.completions.create(**ask(f"{USER} [[cut:2]]"))
    assert wait_for(lambda: u1.stats()["responses_cut"] == 2)


def test_malformed_line_after_first_chunk(u1: Upstream) -> None:
    with httpx.stream(
        "POST",
        f"{u1.base_url}/chat/completions",
        json=ask("hi [[malformed]]", stream=True),
        trust_env=False,
    ) as resp:
        events = sse(resp.iter_lines())
    assert events[1] == ("", "{not json")
    assert json.loads(events[0][1])["choices"][0]["delta"]["role"] == "assistant"
    assert events[-1] == ("", "[DONE]")
    with pytest.raises(ValueError):
        list(client(u1).chat.completions.create(**ask("hi [[malformed]]", stream=True)))


def test_error_event_after_two_chunks(u1: Upstream) -> None:
    got: list[Any] = []
    with pytest.raises(openai.APIError, match="error event"):
        for chunk in client(u1).chat.completions.create(
            **ask(f"{USER} [[error_event]]", stream=True)
        ):
            got.append(chunk)
    assert [c.choices[0].delta.content for c in got[1:]] == ["Answer", " to:"]


def test_hang_until_the_client_gives_up(u1: Upstream) -> None:
    with pytest.raises(openai.APITimeoutError):
        client(u1, timeout=0.3).chat.completions.create(**ask("hi [[hang]]"))
    assert wait_for(lambda: u1.stats()["requests_cancelled"] == 1)
    assert u1.stats()["in_flight"] == 0


def test_streams_cancelled_counts_a_client_leaving(u1: Upstream) -> None:
    text = "one two three four five six seven eight [[chunk_delay:100]]"
    with httpx.stream(
        "POST", f"{u1.base_url}/chat/completions", json=ask(text, stream=True), trust_env=False
    ) as resp:
        lines = resp.iter_lines()
        assert next(lines).startswith("data: ")
    assert wait_for(lambda: u1.stats()["streams_cancelled"] == 1)
    stats = u1.stats()
    assert stats["streams_started"] == 1 and stats["streams_completed"] == 0
    assert stats["in_flight"] == 0


def test_control_fails_the_next_requests_then_recovers(u1: Upstream) -> None:
    u1.control(fail_status=503, retry_after=1.5, count=2)
    for _ in range(2):
        with pytest.raises(openai.APIStatusError) as info:
            client(u1).chat.completions.create(**ask(USER))
        assert info.value.status_code == 503
        assert info.value.response.headers["retry-after"] == "1.5"
    assert client(u1).chat.completions.create(**ask(USER)).choices[0].message.content == EXPECTED
    u1.control(hang=True)
    with pytest.raises(openai.APITimeoutError):
        client(u1, timeout=0.2).chat.completions.create(**ask(USER))
    u1.reset()
    assert u1.stats()["requests"] == 0
    assert client(u1).chat.completions.create(**ask(USER)).choices[0].message.content == EXPECTED


def test_control_fail_rate_fails_that_share_of_requests(u1: Upstream) -> None:
    u1.control(fail_rate=0.5, fail_status=503)
    codes = []
    for _ in range(200):
        try:
            client(u1).chat.completions.create(**ask(USER))
            codes.append(200)
        except openai.APIStatusError as exc:
            codes.append(exc.status_code)
    assert set(codes) == {200, 503} and 70 < codes.count(503) < 130
    assert u1.stats()["errors_injected"] == codes.count(503)


def test_models_and_health(u1: Upstream) -> None:
    ids = [m.id for m in client(u1).models.list()]
    assert "gpt-x" in ids
    health = httpx.get(f"{u1.url}/healthz", trust_env=False)
    assert health.json()["name"] == "u1" and health.headers["x-upstream-name"] == "u1"


# ---------------------------------------------------------------------------------------------
# Anthropic kind.

ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


def messages_body(text: str, **kwargs: Any) -> dict[str, Any]:
    return {
        "model": "claude-x",
        "max_tokens": 100,
        "system": "Be terse.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
        **kwargs,
    }


def test_anthropic_message(anthropic_upstream: Upstream) -> None:
    url = f"{anthropic_upstream.base_url}/v1/messages"
    resp = httpx.post(url, json=messages_body(USER), headers=ANTHROPIC_HEADERS, trust_env=False)
    assert resp.status_code == 200, resp.text
    msg = resp.json()
    assert msg["id"].startswith("msg_") and msg["type"] == "message"
    assert msg["role"] == "assistant" and msg["model"] == "claude-x"
    assert msg["content"] == [{"type": "text", "text": EXPECTED}]
    assert (msg["stop_reason"], msg["stop_sequence"]) == ("end_turn", None)
    assert msg["usage"] == {"input_tokens": 2 + 6, "output_tokens": 8}

    short = httpx.post(
        url, json=messages_body(USER, max_tokens=2), headers=ANTHROPIC_HEADERS, trust_env=False
    ).json()
    assert short["stop_reason"] == "max_tokens" and short["content"][0]["text"] == "Answer to:"
    stop = httpx.post(
        url,
        json=messages_body(USER, stop_sequences=["capital"]),
        headers=ANTHROPIC_HEADERS,
        trust_env=False,
    ).json()
    assert (stop["stop_reason"], stop["stop_sequence"]) == ("stop_sequence", "capital")
    assert stop["content"][0]["text"] == "Answer to: What is the"

    for headers in ({"x-api-key": "k"}, {"anthropic-version": "2023-06-01"}):
        denied = httpx.post(url, json=messages_body(USER), headers=headers, trust_env=False)
        assert denied.status_code == 401
        assert denied.json()["error"]["type"] == "authentication_error"
    body = messages_body(USER)
    del body["max_tokens"]
    bad = httpx.post(url, json=body, headers=ANTHROPIC_HEADERS, trust_env=False)
    assert bad.status_code == 400 and bad.json()["type"] == "error"
    overloaded = httpx.post(
        url, json=messages_body("hi [[status:529]]"), headers=ANTHROPIC_HEADERS, trust_env=False
    )
    assert overloaded.status_code == 529
    assert overloaded.json()["error"]["type"] == "overloaded_error"
    (req, *_) = anthropic_upstream.requests(last=1)
    assert req["headers"]["x-api-key"] == "sk-ant...[11]"
    assert req["headers"]["anthropic-version"] == "2023-06-01"


def test_anthropic_stream_event_sequence(anthropic_upstream: Upstream) -> None:
    url = f"{anthropic_upstream.base_url}/v1/messages"
    body = messages_body("hello there", stream=True)
    with httpx.stream("POST", url, json=body, headers=ANTHROPIC_HEADERS, trust_env=False) as resp:
        events = sse(resp.iter_lines())
    names = [e for e, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    data = [json.loads(d) for _, d in events]
    assert all(d["type"] == e for (e, _), d in zip(events, data, strict=True))
    assert data[0]["message"]["usage"]["input_tokens"] == 4
    text = "".join(d["delta"]["text"] for d in data if d["type"] == "content_block_delta")
    assert text == "Answer to: hello there"
    assert data[-2]["delta"]["stop_reason"] == "end_turn"
    assert data[-2]["usage"]["output_tokens"] == 4

    body = messages_body(f"{USER} [[error_event]]", stream=True)
    with httpx.stream("POST", url, json=body, headers=ANTHROPIC_HEADERS, trust_env=False) as resp:
        events = sse(resp.iter_lines())
    assert [e for e, _ in events][-3:] == ["content_block_delta", "content_block_delta", "error"]
    assert json.loads(events[-1][1])["error"]["type"] == "overloaded_error"


# ---------------------------------------------------------------------------------------------
# The harness around it.


def test_kill_and_restart_on_the_same_port(upstream_factory: Callable[..., Upstream]) -> None:
    up = upstream_factory("solo")
    port = up.port
    up.kill()
    with pytest.raises(openai.APIConnectionError):
        client(up, timeout=2).chat.completions.create(**ask(USER))
    up.restart()
    assert up.port == port
    assert client(up).chat.completions.create(**ask(USER)).choices[0].message.content == EXPECTED


def test_basic_config_is_a_valid_gateway_config(
    upstreams: UpstreamSet, anthropic_upstream: Upstream, tmp_path: Path
) -> None:
    text = basic_config(
        upstreams,
        tmp_path,
        cache=True,
        cache_extra="threshold = 0.8",
        anthropic=anthropic_upstream,
        extra="[routing.retry]\nmax_attempts = 2\n",
    )
    tomllib.loads(text)
    cfg = config_mod.load(write_config(tmp_path, text))
    assert set(cfg.providers) == {"u1", "u2", "u3", "a1"}
    assert [t.target for t in cfg.models["m"].targets] == ["u1/gpt-x", "u2/gpt-x", "u3/gpt-x"]
    assert [t.target for t in cfg.models["m1"].targets] == ["u1/gpt-x"]
    assert cfg.providers["u2"].base_url == upstreams["u2"].url + "/v1"
    assert cfg.providers["a1"].base_url == anthropic_upstream.url
    assert cfg.cache.enabled and cfg.cache.threshold == 0.8
    assert cfg.routing.retry.max_attempts == 2


def test_gateway_fixture_round_trip(
    upstreams: UpstreamSet, tmp_path: Path, gateway_factory: Callable[..., Gateway]
) -> None:
    """The Gateway helper against the real ``sidecache serve`` (cache off: fast start)."""
    gw = gateway_factory(basic_config(upstreams, tmp_path))
    done = gw.client().chat.completions.create(**{**ask(USER), "model": "m1"})
    assert done.choices[0].message.content == EXPECTED
    assert upstreams["u1"].stats()["by_model"] == {"gpt-x": 1}
    assert gw.stop() is not None
    assert "Traceback" not in gw.logs()


def test_a_test_may_kill_a_session_upstream(upstreams: UpstreamSet) -> None:
    upstreams["u3"].kill()
    assert not upstreams["u3"].alive


def test_the_next_test_gets_it_back(upstreams: UpstreamSet) -> None:
    up = upstreams["u3"]
    assert up.alive and up.stats()["requests"] == 0
    assert client(up).chat.completions.create(**ask(USER)).choices[0].message.content == EXPECTED


def test_gateway_that_cannot_start_fails_fast_with_its_output(
    gateway_factory: Callable[..., Gateway],
) -> None:
    with pytest.raises(ProcessExited) as info:
        gateway_factory("[server\nport = ")
    assert info.value.returncode not in (None, 0)
    assert "TOML" in info.value.output
