"""``POST /v1/messages`` driven by the ``anthropic`` SDK with ``base_url`` at the gateway.

Claude-based tools change only the base URL: the SDK's ``messages.create`` and
``messages.stream`` work unchanged whichever provider the alias routes to (an OpenAI-compatible
upstream or an Anthropic one), keys go as ``x-api-key`` or ``Authorization: Bearer``, and every
error, before or during a stream, is in Anthropic's shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import anthropic
import orjson
import pytest
from support import Gateway, Upstream, UpstreamSet, basic_config
from support.counters import settled
from support.keys import create_key

PRICES = """
[pricing."gpt-x"]
input = 1000.0
output = 2000.0
[pricing."claude-x"]
input = 3000.0
output = 15000.0
"""
SYSTEM = "You answer programming questions."
QUESTION = "How do I reverse a list in Python?"
PARAPHRASE = "What's the way to reverse a Python list?"
ANSWER = "Answer to: " + QUESTION


def ask(text: str) -> list[anthropic.types.MessageParam]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def gw(both_kinds_gateway: Callable[[str], Gateway]) -> Gateway:
    return both_kinds_gateway(PRICES)


def test_a_miss_then_exact_and_semantic_hits_streamed_and_not_on_either_provider(
    gw: Gateway, upstreams: UpstreamSet, anthropic_upstream: Upstream
) -> None:
    key = create_key(gw.config_path, "acme")
    by_header = gw.anthropic_client(key.raw)  # x-api-key, as the SDK sends it by default
    by_bearer = gw.anthropic_client(None, auth_token=key.raw)  # Authorization: Bearer
    for alias in ("m1", "claude"):
        raw = by_header.messages.with_raw_response.create(
            model=alias, max_tokens=64, system=SYSTEM, messages=ask(QUESTION)
        )
        assert raw.headers["x-sidecache"] == "miss"
        message = raw.parse()
        assert message.content[0].type == "text" and message.content[0].text == ANSWER
        assert message.stop_reason == "end_turn"
        assert message.usage.output_tokens == len(ANSWER.split())

        raw = by_bearer.messages.with_raw_response.create(
            model=alias, max_tokens=64, system=SYSTEM, messages=ask(QUESTION)
        )
        assert raw.headers["x-sidecache"] == "hit-exact"
        assert raw.parse().content[0].text == ANSWER  # type: ignore[union-attr]

        with by_header.messages.stream(
            model=alias, max_tokens=64, system=SYSTEM, messages=ask(PARAPHRASE)
        ) as stream:
            assert stream.response.headers["x-sidecache"] == "hit-semantic"
            assert "".join(stream.text_stream) == ANSWER
            final = stream.get_final_message()
        assert final.stop_reason == "end_turn" and final.usage.input_tokens > 0

        with by_bearer.messages.stream(
            model=alias, max_tokens=64, system=SYSTEM, messages=ask(QUESTION)
        ) as stream:
            assert stream.response.headers["x-sidecache"] == "hit-exact"
            assert stream.get_final_text() == ANSWER
    assert upstreams["u1"].stats()["requests"] == 1
    assert anthropic_upstream.stats()["requests"] == 1

    doc = settled(gw, 8)
    acme = doc["tenants"]["acme"]
    assert (acme["misses"], acme["hit_exact"], acme["hit_semantic"]) == (2, 4, 2)
    assert acme["cost_usd"] > 0 and acme["saved_usd"] > 2 * acme["cost_usd"]
    assert doc["endpoints"]["messages"]["requests"] == 8
    listed = {m.id for m in by_header.models.list()}  # the SDK's model list works too
    assert listed == {"m", "m1", "claude"}


def test_forty_streams_from_two_tenants_at_once_are_each_accounted_once(
    gw: Gateway, upstreams: UpstreamSet
) -> None:
    keys = [create_key(gw.config_path, t) for t in ("acme", "globex")]

    async def run() -> list[str]:
        clients = [gw.async_anthropic_client(k.raw, timeout=60) for k in keys]

        async def one(i: int) -> str:
            client = clients[i % 2]
            prompt = f"[[delay:100]] concurrent question {i // 4}"  # 4 ask each question
            async with client.messages.stream(
                model="m", max_tokens=64, messages=ask(prompt)
            ) as stream:
                return await stream.get_final_text()

        try:
            return list(await asyncio.gather(*(one(i) for i in range(40))))
        finally:
            for c in clients:
                await c.close()

    texts = asyncio.run(run())
    assert texts == [f"Answer to: concurrent question {i // 4}" for i in range(40)]
    doc = settled(gw, 40)
    assert doc["endpoints"]["messages"]["requests"] == 40 and doc["in_flight"] == 0
    assert doc["tenants"]["acme"]["requests"] == doc["tenants"]["globex"]["requests"] == 20
    # tenants never share entries: each tenant paid for its own 10 questions at most once
    sent = sum(u.stats()["requests"] for u in upstreams)
    assert 10 <= sent <= 20


def test_errors_are_anthropic_shaped_before_and_during_a_stream(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(basic_config(upstreams, tmp_path))
    key = create_key(gw.config_path, "acme", "--rpm", "3")
    base = {"model": "m1", "max_tokens": 5, "messages": ask("x")}
    bash_tool = {"type": "bash_20250124", "name": "bash"}
    bodies: list[object] = [
        {k: v for k, v in base.items() if k != "max_tokens"},
        {**base, "messages": []},
        {**base, "messages": [{"role": "tool", "content": "x"}]},
        {**base, "messages": [{"role": "user", "content": 5}]},
        {**base, "temperature": 9},
        {**base, "tools": [bash_tool]},
    ]
    cases = [(b"{not json", 400, "invalid_request_error")]
    cases += [(orjson.dumps(b), 400, "invalid_request_error") for b in bodies]
    cases.append((orjson.dumps({**base, "model": "nope"}), 404, "not_found_error"))
    with gw.http(None) as http:
        for body, status, kind in cases:
            r = http.post("/v1/messages", content=body, headers={"x-api-key": key.raw})
            assert r.status_code == status, (body, r.text)
            doc = r.json()
            assert (
                doc["type"] == "error" and doc["error"]["type"] == kind and doc["error"]["message"]
            )
        r = http.post("/v1/messages", json=base, headers={"x-api-key": "sk-sc-wrong"})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    client = gw.anthropic_client(key.raw)
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model="m1", max_tokens=0, messages=ask("x"))
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    with (
        pytest.raises(anthropic.APIStatusError, match="error event"),  # after the first byte
        client.messages.stream(model="m1", max_tokens=64, messages=ask("[[error_event]] hi")) as s,
    ):
        "".join(s.text_stream)
    statuses = []
    for _ in range(4):
        try:
            client.messages.create(model="m1", max_tokens=64, messages=ask("within the limit?"))
            statuses.append(200)
        except anthropic.RateLimitError as exc:
            assert exc.response.headers["retry-after"]
            statuses.append(429)
    assert statuses == [200, 200, 429, 429]  # 3 a minute, and the failed stream was one
    doc = settled(gw, len(cases) + 7)
    assert doc["endpoints"]["messages"]["errors"] >= len(cases) + 3
