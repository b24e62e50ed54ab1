"""The Responses API's translation, judged by the ``openai`` SDK's own stream accumulator."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai import omit
from openai._models import construct_type
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent

from sidecache.errors import BadRequest
from sidecache.openai.chunks import replay_chunks
from sidecache.openai.response_events import ResponseEvents
from sidecache.openai.responses import from_completion, to_chat, validate_responses
from sidecache.openai.schemas import validate_chat


def chat_of(body: dict[str, Any]) -> dict[str, Any]:
    chat = to_chat(body, validate_responses(body))
    validate_chat(chat)  # the pipeline takes it as it is
    return chat


def test_a_string_input_with_instructions_is_a_system_and_a_user_message() -> None:
    chat = chat_of(
        {
            "model": "m",
            "input": "hi",
            "instructions": "be brief",
            "max_output_tokens": 50,
            "temperature": 0.2,
            "metadata": {"a": "b"},
        }
    )
    assert chat == {
        "model": "m",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "max_completion_tokens": 50,
        "temperature": 0.2,
    }


def test_items_tools_and_formats_translate_to_their_chat_counterparts() -> None:
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "function_call", "call_id": "c1", "name": "wx", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "wx", "arguments": '{"a":1}'},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "and this"},
                    {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
                ],
            },
        ],
        "tools": [{"type": "function", "name": "wx", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "wx"},
        "text": {"format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}}},
        "reasoning": {"effort": "low"},
        "stream": True,
    }
    chat = chat_of(body)
    assert chat["messages"] == [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "wx", "arguments": "{}"}},
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "wx", "arguments": '{"a":1}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "and this"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
            ],
        },
    ]
    assert chat["tools"] == [
        {"type": "function", "function": {"name": "wx", "parameters": {"type": "object"}}}
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "wx"}}
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "s", "schema": {"type": "object"}},
    }
    assert chat["reasoning_effort"] == "low"
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"model": "m", "input": "x", "store": True}, "store"),
        ({"model": "m", "input": "x", "background": True}, "background"),
        ({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "m", "input": "x", "temperature": 3}, "temperature"),
        ({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ],
)
def test_bad_or_stateful_requests_are_a_400_naming_the_field(
    body: dict[str, Any], param: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        chat_of(body)
    assert caught.value.param == param


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
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "wx", "arguments": '{"city":"Oslo"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "tz", "arguments": "{}"},
                    },
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
}


def sdk_final(events: bytes) -> Any:
    """Feed our SSE bytes to the SDK's accumulator, as ``responses.stream`` does."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)  # type: ignore[arg-type]
    kinds = []
    final = None
    for block in events.decode().split("\n\n"):
        if not block:
            continue
        event_line, data_line = block.split("\n")
        data = orjson.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {data['type']}"
        event = construct_type(type_=ResponseStreamEvent, value=data)
        for out in state.handle_event(event):  # type: ignore[arg-type]
            kinds.append(out.type)
            if out.type in ("response.completed", "response.incomplete", "response.failed"):
                final = out.response
    return kinds, final


def test_a_replayed_answer_with_tool_calls_streams_as_the_sdk_expects() -> None:
    req = validate_responses({"model": "m", "input": "x", "stream": True})
    events = ResponseEvents(req)
    out = b"".join(
        events.chunk(c) for c in replay_chunks(COMPLETION, include_usage=True, chunk_chars=4)
    )
    out += events.done()
    seqs = [
        orjson.loads(b.split(b"\ndata: ")[1])["sequence_number"] for b in out.split(b"\n\n") if b
    ]
    assert seqs == list(range(len(seqs)))
    kinds, final = sdk_final(out)
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-1] == "response.completed"
    assert final.output_text == "Let me look."
    calls = [o for o in final.output if o.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("call_1", "wx", '{"city":"Oslo"}'),
        ("call_2", "tz", "{}"),
    ]
    assert final.usage.input_tokens == 7 and final.usage.output_tokens == 5
    whole = from_completion(COMPLETION, req)
    assert [o["type"] for o in whole["output"]] == ["message", "function_call", "function_call"]
    assert whole["status"] == "completed" and whole["usage"]["total_tokens"] == 12


def test_a_cut_answer_is_incomplete_and_a_failure_is_failed() -> None:
    req = validate_responses({"model": "m", "input": "x", "stream": True})
    cut = {
        **COMPLETION,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "abc"},
                "finish_reason": "length",
            }
        ],
    }
    events = ResponseEvents(req)
    out = b"".join(events.chunk(c) for c in replay_chunks(cut, include_usage=True, chunk_chars=2))
    kinds, final = sdk_final(out + events.done())
    assert kinds[-1] == "response.incomplete"
    assert final.incomplete_details.reason == "max_output_tokens"
    events = ResponseEvents(req)
    first = next(iter(replay_chunks(cut, include_usage=True, chunk_chars=2)))
    out = events.chunk(first) + events.error(BadRequest("upstream went away"))
    kinds, final = sdk_final(out)
    assert kinds[-1] == "response.failed" and final.error.message == "upstream went away"
