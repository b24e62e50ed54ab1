"""The two APIs a fake upstream speaks (OpenAI, Anthropic): bodies, errors and stream shapes."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.types import Scope

from support.fake_upstream.answers import Answer, make_answer, stops, text_of
from support.fake_upstream.faults import Cut, Faults

_OPENAI_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_ANTHROPIC_ERRORS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def new_id(prefix: str) -> str:
    return prefix + os.urandom(12).hex()


def _sse(data: Any, event: bytes = b"") -> bytes:
    head = b"event: " + event + b"\n" if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


_MALFORMED = b"data: {not json\n\n"


# ---------------------------------------------------------------------------------------------
# Dialects: what differs between the OpenAI and the Anthropic wire formats.


class Dialect:
    """One upstream API's request checks, answer shape and stream events.

    The chat endpoint drives the faults and the stream the same way for both APIs; a dialect
    only says what the bytes look like. ``stream_*`` methods return whole SSE events.
    """

    path: str

    def __init__(self, name: str) -> None:
        self.name = name

    def error_body(self, status: int, message: str) -> bytes:
        raise NotImplementedError

    def check(self, scope: Scope, body: dict[str, Any]) -> str | None:
        """An error message (status 400, or 401 when it names a header) or None."""
        raise NotImplementedError

    def system_text(self, body: dict[str, Any]) -> str:
        return ""

    def answer(self, body: dict[str, Any], last_user: str, prompt_tokens: int) -> Answer:
        raise NotImplementedError

    def message(self, body: dict[str, Any], answer: Answer) -> dict[str, Any]:
        raise NotImplementedError

    def stream(self, body: dict[str, Any], answer: Answer) -> StreamShape:
        raise NotImplementedError


class StreamShape:
    """The events of one streamed answer: head events, one delta per word, error, tail."""

    def head(self) -> list[bytes]:
        raise NotImplementedError

    def delta(self, piece: str) -> bytes:
        raise NotImplementedError

    def error(self) -> bytes:
        raise NotImplementedError

    def tail(self) -> list[bytes]:
        raise NotImplementedError


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class OpenAIDialect(Dialect):
    path = "/v1/chat/completions"

    def error_body(self, status: int, message: str) -> bytes:
        etype, code = _OPENAI_ERRORS.get(status, ("server_error", None))
        error = {"message": message, "type": etype, "param": None, "code": code}
        return orjson.dumps({"error": error})

    def check(self, scope: Scope, body: dict[str, Any]) -> str | None:
        for key in ("model", "messages"):
            if key not in body:
                return f"Missing required parameter: '{key}'."
        if not isinstance(body["messages"], list):
            return "Invalid type for 'messages': expected an array."
        return None

    def answer(self, body: dict[str, Any], last_user: str, prompt_tokens: int) -> Answer:
        limit = _int_or_none(body.get("max_completion_tokens", body.get("max_tokens")))
        return make_answer(last_user, prompt_tokens, limit, stops(body.get("stop")))

    @staticmethod
    def n(body: dict[str, Any]) -> int:
        n = _int_or_none(body.get("n"))
        return n if n is not None and n > 1 else 1

    @staticmethod
    def usage(answer: Answer, n: int) -> dict[str, int]:
        completion = answer.completion_tokens * n
        return {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": answer.prompt_tokens + completion,
        }

    def message(self, body: dict[str, Any], answer: Answer) -> dict[str, Any]:
        n = self.n(body)
        finish = "length" if answer.finish == "length" else "stop"
        message = {"role": "assistant", "content": answer.text, "refusal": None}
        return {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [
                {"index": i, "message": message, "logprobs": None, "finish_reason": finish}
                for i in range(n)
            ],
            "usage": self.usage(answer, n),
            "system_fingerprint": "fp_" + self.name,
        }

    def stream(self, body: dict[str, Any], answer: Answer) -> StreamShape:
        return _OpenAIStream(self, body, answer)


class _OpenAIStream(StreamShape):
    def __init__(self, dialect: OpenAIDialect, body: dict[str, Any], answer: Answer) -> None:
        options = body.get("stream_options")
        self.include_usage = isinstance(options, dict) and options.get("include_usage") is True
        self.answer = answer
        self.n = dialect.n(body)
        self.base: dict[str, Any] = {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model"),
            "system_fingerprint": "fp_" + dialect.name,
        }
        if self.include_usage:
            self.base["usage"] = None

    def _chunks(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return b"".join(
            _sse(
                {
                    **self.base,
                    "choices": [
                        {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}
                    ],
                }
            )
            for i in range(self.n)
        )

    def head(self) -> list[bytes]:
        return [self._chunks({"role": "assistant", "content": "", "refusal": None})]

    def delta(self, piece: str) -> bytes:
        return self._chunks({"content": piece})

    def error(self) -> bytes:
        message = "fake upstream: error event mid-stream"
        return _sse(
            {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
        )

    def tail(self) -> list[bytes]:
        finish = "length" if self.answer.finish == "length" else "stop"
        events = [self._chunks({}, finish)]
        if self.include_usage:
            usage = OpenAIDialect.usage(self.answer, self.n)
            events.append(_sse({**self.base, "choices": [], "usage": usage}))
        events.append(b"data: [DONE]\n\n")
        return events


class AnthropicDialect(Dialect):
    path = "/v1/messages"

    def error_body(self, status: int, message: str) -> bytes:
        etype = _ANTHROPIC_ERRORS.get(status, "api_error")
        return orjson.dumps({"type": "error", "error": {"type": etype, "message": message}})

    def check(self, scope: Scope, body: dict[str, Any]) -> str | None:
        names = {k for k, _ in scope["headers"]}
        for header in (b"x-api-key", b"anthropic-version"):
            if header not in names:
                return f"{header.decode()} header is required"
        for key in ("model", "messages", "max_tokens"):
            if key not in body:
                return f"{key}: Field required"
        if not isinstance(body["messages"], list):
            return "messages: Input should be a valid list"
        return None

    def system_text(self, body: dict[str, Any]) -> str:
        return text_of(body.get("system"))

    def answer(self, body: dict[str, Any], last_user: str, prompt_tokens: int) -> Answer:
        limit = _int_or_none(body.get("max_tokens"))
        return make_answer(last_user, prompt_tokens, limit, stops(body.get("stop_sequences")))

    @staticmethod
    def stop_reason(answer: Answer) -> str:
        reasons = {"length": "max_tokens", "stop_sequence": "stop_sequence"}
        return reasons.get(answer.finish, "end_turn")

    def message(self, body: dict[str, Any], answer: Answer) -> dict[str, Any]:
        return {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": [{"type": "text", "text": answer.text}],
            "stop_reason": self.stop_reason(answer),
            "stop_sequence": answer.stop_sequence,
            "usage": {
                "input_tokens": answer.prompt_tokens,
                "output_tokens": answer.completion_tokens,
            },
        }

    def stream(self, body: dict[str, Any], answer: Answer) -> StreamShape:
        return _AnthropicStream(body, answer)


class _AnthropicStream(StreamShape):
    def __init__(self, body: dict[str, Any], answer: Answer) -> None:
        self.body = body
        self.answer = answer

    def head(self) -> list[bytes]:
        message: dict[str, Any] = {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": self.body.get("model"),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.answer.prompt_tokens, "output_tokens": 1},
        }
        block = {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        }
        return [
            _sse({"type": "message_start", "message": message}, b"message_start"),
            _sse(block, b"content_block_start"),
            _sse({"type": "ping"}, b"ping"),
        ]

    def delta(self, piece: str) -> bytes:
        data = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": piece},
        }
        return _sse(data, b"content_block_delta")

    def error(self) -> bytes:
        error = {"type": "overloaded_error", "message": "Overloaded"}
        return _sse({"type": "error", "error": error}, b"error")

    def tail(self) -> list[bytes]:
        delta = {
            "stop_reason": AnthropicDialect.stop_reason(self.answer),
            "stop_sequence": self.answer.stop_sequence,
        }
        usage = {"output_tokens": self.answer.completion_tokens}
        return [
            _sse({"type": "content_block_stop", "index": 0}, b"content_block_stop"),
            _sse({"type": "message_delta", "delta": delta, "usage": usage}, b"message_delta"),
            _sse({"type": "message_stop"}, b"message_stop"),
        ]


async def stream_events(shape: StreamShape, answer: Answer, faults: Faults) -> AsyncIterator[bytes]:
    """The answer as SSE events, with the stream faults applied (the same for both dialects)."""
    head = shape.head()
    yield head[0]
    if faults.malformed:
        yield _MALFORMED
    for event in head[1:]:
        yield event
    for k, word in enumerate(answer.words):
        if faults.cut is not None and k >= faults.cut:
            raise Cut
        if faults.error_event and k >= 2:
            yield shape.error()
            return
        if faults.chunk_delay:
            await asyncio.sleep(faults.chunk_delay)
        yield shape.delta(word if k == 0 else " " + word)
    if faults.cut is not None:
        raise Cut
    if faults.error_event:
        yield shape.error()
        return
    if faults.chunk_delay:
        await asyncio.sleep(faults.chunk_delay)
    for event in shape.tail():
        yield event


DIALECTS: dict[str, type[Dialect]] = {"openai": OpenAIDialect, "anthropic": AnthropicDialect}
