"""``POST /v1/responses`` driven by the ``openai`` SDK, as agent frameworks call it.

A real gateway over HTTP, the fake OpenAI and Anthropic upstreams behind it, the SDK's
``responses.create`` (stream and not) and ``responses.stream`` as the client. Each test races the
gateway as users do: no sleep between a request and the next, many in flight at once, and waits
only on the gateway's own counters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import openai
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
INSTRUCTIONS = "You answer programming questions."
QUESTION = "How do I reverse a list in Python?"
PARAPHRASE = "What's the way to reverse a Python list?"
ANSWER = "Answer to: " + QUESTION


@pytest.fixture
def gw(both_kinds_gateway: Callable[[str], Gateway]) -> Gateway:
    return both_kinds_gateway(PRICES)


def test_a_miss_then_exact_and_semantic_hits_streamed_and_not_on_either_provider(
    gw: Gateway, upstreams: UpstreamSet, anthropic_upstream: Upstream
) -> None:
    key = create_key(gw.config_path, "acme")
    client = gw.client(key.raw)
    for alias in ("m1", "claude"):  # an OpenAI-compatible upstream, then an Anthropic one
        raw = client.responses.with_raw_response.create(
            model=alias, instructions=INSTRUCTIONS, input=QUESTION
        )
        first = raw.parse()
        assert raw.headers["x-sidecache"] == "miss"
        assert first.output_text == ANSWER and first.status == "completed"
        assert first.usage is not None and first.usage.output_tokens == len(ANSWER.split())

        raw = client.responses.with_raw_response.create(  # at once: an exact hit
            model=alias, instructions=INSTRUCTIONS, input=QUESTION
        )
        assert raw.headers["x-sidecache"] == "hit-exact"
        assert raw.parse().output_text == ANSWER and raw.parse().id != first.id

        raw = client.responses.with_raw_response.create(
            model=alias, instructions=INSTRUCTIONS, input=PARAPHRASE, stream=True
        )
        assert raw.headers["x-sidecache"] == "hit-semantic"
        assert float(raw.headers["x-sidecache-similarity"]) >= 0.9
        events = list(raw.parse())
        kinds = [e.type for e in events]
        assert kinds[:2] == ["response.created", "response.in_progress"]
        assert kinds[-1] == "response.completed"
        assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == ANSWER

        with client.responses.stream(  # the SDK's helper, as a new item list
            model=alias,
            instructions=INSTRUCTIONS,
            input=[{"role": "user", "content": [{"type": "input_text", "text": QUESTION}]}],
        ) as stream:
            assert stream.get_final_response().output_text == ANSWER
    assert upstreams["u1"].stats()["requests"] == 1
    assert anthropic_upstream.stats()["requests"] == 1

    doc = settled(gw, 8)
    acme = doc["tenants"]["acme"]
    assert (acme["misses"], acme["hit_exact"], acme["hit_semantic"]) == (2, 4, 2)
    assert acme["cost_usd"] > 0 and acme["saved_usd"] > 2 * acme["cost_usd"]
    assert doc["endpoints"]["responses"]["requests"] == 8
    assert doc["models"]["claude"]["saved_usd"] > doc["models"]["m1"]["saved_usd"]


def test_thirty_identical_streams_at_once_share_one_upstream_call_and_the_next_one_hits(
    gw: Gateway, upstreams: UpstreamSet
) -> None:
    prompt = "[[delay:300]] Which sorting algorithm is stable?"

    async def run() -> list[str]:
        client = gw.async_client(timeout=60)

        async def one() -> str:
            stream = await client.responses.create(model="m1", input=prompt, stream=True)
            text = ""
            async for event in stream:
                if event.type == "response.completed":
                    text = event.response.output_text
            return text

        try:
            return list(await asyncio.gather(*(one() for _ in range(30))))
        finally:
            await client.close()

    texts = asyncio.run(run())
    assert texts == ["Answer to: Which sorting algorithm is stable?"] * 30
    assert upstreams["u1"].stats()["requests"] == 1
    raw = gw.client().responses.with_raw_response.create(model="m1", input=prompt)
    assert raw.headers["x-sidecache"] == "hit-exact"
    doc = settled(gw, 31)
    assert doc["endpoints"]["responses"]["requests"] == 31 and doc["in_flight"] == 0


def test_the_same_question_through_any_api_is_one_cache_entry(gw: Gateway) -> None:
    """Messages, Responses and Chat Completions ask the same question the same way: the
    answer stored for one is a hit for the others, each in its own API's shape."""
    anthropic_client = gw.anthropic_client()
    raw = anthropic_client.messages.with_raw_response.create(
        model="m1",
        max_tokens=64,
        system=INSTRUCTIONS,
        messages=[{"role": "user", "content": QUESTION}],
    )
    assert raw.headers["x-sidecache"] == "miss"
    client = gw.client()
    raw_r = client.responses.with_raw_response.create(
        model="m1", instructions=INSTRUCTIONS, input=QUESTION, max_output_tokens=64
    )
    assert raw_r.headers["x-sidecache"] == "hit-exact"
    assert raw_r.parse().output_text == ANSWER
    raw_c = client.chat.completions.with_raw_response.create(
        model="m1",
        max_completion_tokens=64,
        messages=[
            {"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": QUESTION},
        ],
    )
    assert raw_c.headers["x-sidecache"] == "hit-exact"
    assert raw_c.parse().choices[0].message.content == ANSWER
    doc = settled(gw, 3)
    assert {e: doc["endpoints"][e]["requests"] for e in doc["endpoints"]} == {
        "chat.completions": 1,
        "messages": 1,
        "responses": 1,
    }


def test_a_failure_mid_stream_is_a_failed_response_and_is_not_cached(gw: Gateway) -> None:
    client = gw.client()
    events = list(client.responses.create(model="m1", input="[[error_event]] tell me", stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.error is not None
    # the cut answer was not stored: the same question (not streamed, so it ends well) is a miss
    raw = client.responses.with_raw_response.create(model="m1", input="[[error_event]] tell me")
    assert raw.headers["x-sidecache"] == "miss"
    doc = settled(gw, 2)
    assert doc["endpoints"]["responses"]["errors"] >= 1


def test_bad_input_is_an_openai_error_never_a_500(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(basic_config(upstreams, tmp_path))
    cases = [
        (b"{not json", 400, None),
        (b"[]", 400, None),
        (b'{"model": "m1"}', 400, "input"),
        (b'{"model": "m1", "input": 5}', 400, "input"),
        (b'{"model": "m1", "input": []}', 400, "input"),
        (
            b'{"model": "m1", "input": "x", "previous_response_id": "resp_1"}',
            400,
            "previous_response_id",
        ),
        (b'{"model": "m1", "input": "x", "store": true}', 400, "store"),
        (b'{"model": "m1", "input": "x", "tools": [{"type": "web_search"}]}', 400, "tools[0].type"),
        (
            b'{"model": "m1", "input": [{"role": "user", "content": [{"type": "x"}]}]}',
            400,
            "input[0].content[0].type",
        ),
        (b'{"model": "m1", "input": [7]}', 400, "input[0]"),
        (b'{"model": "m1", "input": "x", "max_output_tokens": -1}', 400, "max_output_tokens"),
        (b'{"model": "nope", "input": "x"}', 404, "model"),
    ]
    with gw.http() as http:
        for body, status, param in cases:
            r = http.post(
                "/v1/responses", content=body, headers={"content-type": "application/json"}
            )
            assert r.status_code == status, (body, r.text)
            error = r.json()["error"]
            assert set(error) == {"message", "type", "param", "code"} and error["message"]
            assert error["param"] == param, (body, error)
    with pytest.raises(openai.BadRequestError) as caught:
        gw.client().responses.create(model="m1", input="x", previous_response_id="resp_1")
    assert "keeps no responses" in caught.value.message
    doc = settled(gw, len(cases) + 1)
    assert doc["endpoints"]["responses"]["errors"] == len(cases) + 1
