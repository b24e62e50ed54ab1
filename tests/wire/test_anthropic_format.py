"""Anthropic's Messages API inbound, judged by the ``anthropic`` SDK's own stream accumulator;
and the upstream adapter, which shares its mappings, still translating the other way."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event

from sidecache.api.anthropic_format import (
    MessageEvents,
    error_body,
    from_completion,
    to_chat,
    validate_messages,
)
from sidecache.errors import BadRequest, BudgetExceeded, UpstreamTimeout
from sidecache.openai.chunks import replay_chunks
from sidecache.openai.schemas import validate_chat
from sidecache.providers.anthropic import from_message, to_messages_request


def chat_of(body: dict[str, Any]) -> dict[str, Any]:
    chat = to_chat(body, validate_messages(body))
    validate_chat(chat)
    return chat


CONVERSATION: dict[str, Any] = {
    "model": "claude",
    "max_tokens": 64,
    "system": [{"type": "text", "text": "be brief"}],
    "stop_sequences": ["END"],
    "top_k": 5,
    "metadata": {"user_id": "u-1"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "tools": [{"name": "wx", "description": "weather", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "messages": [
        {"role": "user", "content": "weather in Oslo?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "toolu_1", "name": "wx", "input": {"city": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "text", "text": "and tomorrow?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                },
            ],
        },
    ],
}


def test_a_conversation_translates_to_chat_and_back_to_anthropic_unchanged() -> None:
    chat = chat_of(CONVERSATION)
    assert chat["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "weather in Oslo?"},
        {
            "role": "assistant",
            "content": "Looking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "wx", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "and tomorrow?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
    ]
    assert chat["max_completion_tokens"] == 64 and "max_tokens" not in chat
    assert chat["stop"] == ["END"] and chat["top_k"] == 5 and chat["user"] == "u-1"
    assert chat["tool_choice"] == "required" and chat["parallel_tool_calls"] is False
    assert "thinking" not in chat and "metadata" not in chat
    # ... and the upstream adapter turns that chat request back into what the client sent.
    back = to_messages_request({**chat, "model": "claude-x"})
    assert back["system"] == "be brief"
    assert back["max_tokens"] == 64 and back["stop_sequences"] == ["END"] and back["top_k"] == 5
    assert back["messages"][1]["content"] == [
        {"type": "text", "text": "Looking."},
        {"type": "tool_use", "id": "toolu_1", "name": "wx", "input": {"city": "Oslo"}},
    ]
    assert back["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": "sunny",
    }
    assert back["messages"][2]["content"][2] == CONVERSATION["messages"][2]["content"][2]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"temperature": 1.5}, "temperature"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages[0].content[0]",
        ),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice"),
    ],
)
def test_bad_requests_are_a_400_naming_the_field(change: dict[str, Any], param: str) -> None:
    body = {**CONVERSATION, **change}
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(BadRequest) as caught:
        chat_of(body)
    assert caught.value.param == param


def test_errors_are_in_anthropics_shape() -> None:
    cases = [
        (BadRequest("no"), "invalid_request_error"),
        (BudgetExceeded("spent"), "rate_limit_error"),
    ]
    cases.append((UpstreamTimeout("slow"), "timeout_error"))
    for exc, kind in cases:
        assert orjson.loads(error_body(exc)) == {
            "type": "error",
            "error": {"type": kind, "message": exc.message},
        }


COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-x",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {
                        "id": "toolu_9",
                        "type": "function",
                        "function": {"name": "wx", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
}


def sdk_message(events: bytes) -> Any:
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for block in events.decode().split("\n\n"):
        if not block:
            continue
        event_line, data_line = block.split("\n")
        data = orjson.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {data['type']}"
        if data["type"] == "error":
            raise RuntimeError(data["error"]["message"])
        snapshot = accumulate_event(event=data, current_snapshot=snapshot, json_bufs=json_bufs)  # type: ignore[arg-type]
    return snapshot


def test_a_replayed_answer_with_a_tool_call_streams_as_the_sdk_expects() -> None:
    events = MessageEvents("claude")
    out = b"".join(
        events.chunk(c) for c in replay_chunks(COMPLETION, include_usage=True, chunk_chars=4)
    )
    message = sdk_message(out + events.done())
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[0].text == "Let me look."
    assert message.content[1].input == {"city": "Oslo"} and message.content[1].id == "toolu_9"
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 5)
    whole = from_completion(COMPLETION)
    assert whole["content"][1] == {
        "type": "tool_use",
        "id": "toolu_9",
        "name": "wx",
        "input": {"city": "Oslo"},
    }
    assert whole["stop_reason"] == "tool_use" and whole["usage"] == {
        "input_tokens": 7,
        "output_tokens": 5,
    }
    # the upstream adapter reads that message back as the same completion
    again = from_message({**whole, "type": "message"})
    assert again["choices"][0]["message"]["tool_calls"][0]["function"] == {
        "name": "wx",
        "arguments": '{"city":"Oslo"}',
    }


def test_an_error_mid_stream_is_an_error_event() -> None:
    events = MessageEvents("claude")
    first = next(iter(replay_chunks(COMPLETION, include_usage=True, chunk_chars=4)))
    with pytest.raises(RuntimeError, match="went away"):
        sdk_message(events.chunk(first) + events.error(BadRequest("went away")))
