"""A fake LLM upstream for the tests and the overhead benchmark.

It speaks the OpenAI Chat Completions API (``--kind openai``) or the Anthropic Messages API
(``--kind anthropic``) closely enough that the official SDKs accept it, answers
deterministically (``"Answer to: " + <last user text>``, so a cached answer equals a fresh one),
and misbehaves on request so that retries, fallbacks, circuit breakers and stream handling can be
tested against real HTTP:

* per request, by directives inside the last user message (removed before answering)::

    [[status:503]]  [[status:429:retry_after=2]]  [[delay:MS]]  [[chunk_delay:MS]]  [[hang]]
    [[cut:K]]  [[malformed]]  [[error_event]]  [[fail_on:NAME]]  [[fail_on:NAME:429:retry_after=1]]
    [[slow_on:NAME:MS]]

* server-wide, with ``POST /_control`` (``fail_status``, ``retry_after``, ``hang``, ``delay_ms``,
  ``count``) and ``POST /_reset``; ``GET /_stats`` and ``GET /_requests?last=N`` let tests see
  what reached the upstream (bodies as received, secrets redacted).

Run it as a process: ``python tests/upstream.py --port N [--host H] [--name NAME] [--kind K]``;
or import ``build_app(name, kind)``. The chat endpoints are plain ASGI callables (no per-request
Response objects) because the gateway overhead benchmark measures through this server: it must
answer in well under a millisecond.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import logging
import os
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KINDS = ("openai", "anthropic")

_DIRECTIVE = re.compile(
    r"\[\[(status|delay|chunk_delay|hang|cut|malformed|error_event|fail_on|slow_on)"
    r"((?::[^\]]*)?)\]\]"
)
_JSON = b"application/json"
_SSE = b"text/event-stream; charset=utf-8"
_HANG_SECONDS = 3600.0
_RECENT_MAX = 1000
_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization"})

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


class _Cut(Exception):
    """Raised after a partial response so uvicorn drops the connection mid-body."""


class _QuietFilter(logging.Filter):
    """Drop the tracebacks uvicorn logs for connections we cut on purpose or at shutdown."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, _Cut | asyncio.CancelledError):
            return False
        return not str(record.msg).startswith("Cancel ")


def _quiet_uvicorn_logs() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietFilter) for f in logger.filters):
        logger.addFilter(_QuietFilter())


# ---------------------------------------------------------------------------------------------
# Faults: per-request directives and the server-wide control.


@dataclass(slots=True)
class Faults:
    """What to do wrong for one request; directives and the server control both fill it."""

    status: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    hang: bool = False
    cut: int | None = None
    malformed: bool = False
    error_event: bool = False


def _fmt_seconds(value: float | str) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


def _status_args(args: list[str], faults: Faults) -> None:
    """``STATUS[:retry_after=X]`` (also used by ``fail_on:NAME:...``)."""
    faults.status = 500
    for arg in args:
        if arg.startswith("retry_after="):
            faults.retry_after = _fmt_seconds(arg.partition("=")[2])
        elif arg.strip().isdigit():
            faults.status = int(arg)


def parse_directives(text: str, name: str) -> tuple[str, Faults]:
    """Strip ``[[...]]`` directives from ``text``; return the clean text and the faults asked."""
    faults = Faults()
    if "[[" not in text:
        return text, faults
    for m in _DIRECTIVE.finditer(text):
        kind = m.group(1)
        args = m.group(2)[1:].split(":") if m.group(2) else []
        if kind == "status":
            _status_args(args, faults)
        elif kind == "delay" and args:
            faults.delay += float(args[0]) / 1000
        elif kind == "chunk_delay" and args:
            faults.chunk_delay = float(args[0]) / 1000
        elif kind == "hang":
            faults.hang = True
        elif kind == "cut":
            faults.cut = int(args[0]) if args and args[0] else 0
        elif kind == "malformed":
            faults.malformed = True
        elif kind == "error_event":
            faults.error_event = True
        elif kind == "fail_on" and args and args[0] == name:
            _status_args(args[1:], faults)
        elif kind == "slow_on" and len(args) >= 2 and args[0] == name:
            faults.delay += float(args[1]) / 1000
    return _DIRECTIVE.sub(" ", text), faults


@dataclass(slots=True)
class Control:
    """Server-wide misbehaviour set by ``POST /_control``; ``count`` limits how many requests."""

    fail_status: int | None = None
    retry_after: float | None = None
    hang: bool = False
    delay_ms: float = 0.0
    count: int | None = None

    @property
    def active(self) -> bool:
        return self.fail_status is not None or self.hang or self.delay_ms > 0

    def apply(self, faults: Faults) -> None:
        faults.hang = faults.hang or self.hang
        faults.delay += self.delay_ms / 1000
        if self.fail_status is not None and faults.status is None:
            faults.status = self.fail_status
            if self.retry_after is not None:
                faults.retry_after = _fmt_seconds(self.retry_after)


# ---------------------------------------------------------------------------------------------
# State shared by the routes of one server.


@dataclass
class Stats:
    requests: int = 0
    by_model: dict[str, int] = field(default_factory=dict)
    streams_started: int = 0
    streams_completed: int = 0
    streams_cancelled: int = 0
    responses_cut: int = 0
    """Responses dropped on purpose by ``[[cut:K]]`` (stream or not)."""
    requests_cancelled: int = 0
    """Clients that left during a ``delay`` or a ``hang`` (before any byte was sent)."""
    errors_injected: int = 0

    def clear(self) -> None:
        """Zero the counters in place, so requests in flight count into the fresh numbers."""
        self.__dict__.update(Stats().__dict__)


@dataclass
class UpstreamState:
    """Everything one fake server remembers; reset by ``POST /_reset``."""

    name: str
    kind: str
    stats: Stats = field(default_factory=Stats)
    control: Control = field(default_factory=Control)
    in_flight: int = 0
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_RECENT_MAX))

    def take_control(self, faults: Faults) -> None:
        ctl = self.control
        if not ctl.active:
            return
        ctl.apply(faults)
        if ctl.count is not None:
            ctl.count -= 1
            if ctl.count <= 0:
                self.control = Control()

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            **asdict(self.stats),
            "in_flight": self.in_flight,
        }


def _redact(value: str) -> str:
    scheme, sep, token = value.partition(" ")
    if sep and scheme.lower() == "bearer":
        return f"{scheme} {token[:6]}...[{len(token)}]"
    return f"{value[:6]}...[{len(value)}]"


def _record(state: UpstreamState, scope: Scope, raw: bytes, body: Any) -> None:
    headers: dict[str, str] = {}
    for k, v in scope["headers"]:
        key = k.decode("latin-1")
        val = v.decode("latin-1")
        headers[key] = _redact(val) if key in _SECRET_HEADERS else val
    entry: dict[str, Any] = {
        "time": time.time(),
        "method": scope["method"],
        "path": scope["path"],
        "headers": headers,
        "body": body,
    }
    if body is None:
        entry["raw"] = raw.decode("utf-8", "replace")
    state.recent.append(entry)


# ---------------------------------------------------------------------------------------------
# Answers.


def _text_of(content: Any) -> str:
    """String content as is; a list of parts: the text parts joined with a space."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p["text"]
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        ]
        return " ".join(parts)
    return ""


def _word_count(text: str) -> int:
    return len(_DIRECTIVE.sub(" ", text).split()) if "[[" in text else len(text.split())


@dataclass(slots=True)
class Answer:
    """The deterministic completion: its words, why it stopped, and the token counts."""

    words: list[str]
    finish: str  # "stop" | "length" | "stop_sequence"
    stop_sequence: str | None
    prompt_tokens: int

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def completion_tokens(self) -> int:
        return len(self.words)


def make_answer(
    last_user: str, prompt_tokens: int, max_tokens: int | None, stops: Iterable[str]
) -> Answer:
    """``"Answer to: " + text``, cut at the first stop sequence, then at ``max_tokens`` words."""
    text = " ".join(("Answer to: " + last_user).split())
    finish, matched = "stop", None
    best = len(text)
    for s in stops:
        if s:
            i = text.find(s)
            if 0 <= i < best:
                best, matched = i, s
    if matched is not None:
        text = text[:best]
        finish = "stop_sequence"
    words = text.split()
    if max_tokens is not None and 0 <= max_tokens < len(words):
        words = words[:max_tokens]
        finish, matched = "length", None
    return Answer(words, finish, matched, prompt_tokens)


def _stops(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for s in value if isinstance(s, str)]
    return []


# ---------------------------------------------------------------------------------------------
# Raw ASGI helpers.


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client left before sending it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _race_disconnect(receive: Receive, work: Awaitable[Any]) -> bool:
    """Run ``work`` until done (False) or until the client goes away (True, work cancelled).

    uvicorn speaks ASGI 2.3 to us: ``send`` after a disconnect is silently dropped, so the only
    reliable way to notice a client that left is to keep a ``receive()`` waiting alongside.
    """
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        watch.cancel()
        raise
    if task.done():
        watch.cancel()
        task.result()
        return False
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return True


def _new_id(prefix: str) -> str:
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
        return make_answer(last_user, prompt_tokens, limit, _stops(body.get("stop")))

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
            "id": _new_id("chatcmpl-"),
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
            "id": _new_id("chatcmpl-"),
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
        return _text_of(body.get("system"))

    def answer(self, body: dict[str, Any], last_user: str, prompt_tokens: int) -> Answer:
        limit = _int_or_none(body.get("max_tokens"))
        return make_answer(last_user, prompt_tokens, limit, _stops(body.get("stop_sequences")))

    @staticmethod
    def stop_reason(answer: Answer) -> str:
        reasons = {"length": "max_tokens", "stop_sequence": "stop_sequence"}
        return reasons.get(answer.finish, "end_turn")

    def message(self, body: dict[str, Any], answer: Answer) -> dict[str, Any]:
        return {
            "id": _new_id("msg_"),
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
            "id": _new_id("msg_"),
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
            raise _Cut
        if faults.error_event and k >= 2:
            yield shape.error()
            return
        if faults.chunk_delay:
            await asyncio.sleep(faults.chunk_delay)
        yield shape.delta(word if k == 0 else " " + word)
    if faults.cut is not None:
        raise _Cut
    if faults.error_event:
        yield shape.error()
        return
    if faults.chunk_delay:
        await asyncio.sleep(faults.chunk_delay)
    for event in shape.tail():
        yield event


_DIALECTS: dict[str, type[Dialect]] = {"openai": OpenAIDialect, "anthropic": AnthropicDialect}


# ---------------------------------------------------------------------------------------------
# The chat endpoint.


class ChatEndpoint:
    """``POST /v1/chat/completions`` or ``POST /v1/messages`` as a plain ASGI app."""

    def __init__(self, state: UpstreamState, dialect: Dialect) -> None:
        self.state = state
        self.dialect = dialect
        self.name_header = (b"x-upstream-name", state.name.encode())
        self.request_id = isinstance(dialect, AnthropicDialect)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.state.in_flight += 1
        try:
            await self._handle(scope, receive, send)
        finally:
            self.state.in_flight -= 1

    def _headers(self, content_type: bytes) -> list[tuple[bytes, bytes]]:
        headers = [(b"content-type", content_type), self.name_header]
        if self.request_id:
            headers.append((b"request-id", _new_id("req_").encode()))
        return headers

    async def _send(
        self, send: Send, status: int, data: bytes, retry_after: str | None = None
    ) -> None:
        headers = self._headers(_JSON)
        headers.append((b"content-length", str(len(data)).encode()))
        if retry_after is not None:
            headers.append((b"retry-after", retry_after.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        state, stats, dialect = self.state, self.state.stats, self.dialect
        raw = await _read_body(receive)
        if raw is None:
            return
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        _record(state, scope, raw, body)
        stats.requests += 1
        if not isinstance(body, dict):
            await self._send(send, 400, dialect.error_body(400, "body is not a JSON object"))
            return
        model = body.get("model")
        if isinstance(model, str):
            stats.by_model[model] = stats.by_model.get(model, 0) + 1
        problem = dialect.check(scope, body)
        if problem is not None:
            status = 401 if "header" in problem else 400
            await self._send(send, status, dialect.error_body(status, problem))
            return

        last_user, prompt_tokens = _prompt(body["messages"], dialect.system_text(body))
        last_user, faults = parse_directives(last_user, state.name)
        state.take_control(faults)
        if faults.delay > 0 and await _race_disconnect(receive, asyncio.sleep(faults.delay)):
            stats.requests_cancelled += 1
            return
        if faults.hang:
            await _race_disconnect(receive, asyncio.sleep(_HANG_SECONDS))
            stats.requests_cancelled += 1
            return
        if faults.status is not None:
            stats.errors_injected += 1
            message = f"fake upstream {state.name}: injected status {faults.status}"
            data = dialect.error_body(faults.status, message)
            await self._send(send, faults.status, data, faults.retry_after)
            return

        answer = dialect.answer(body, last_user, prompt_tokens)
        if body.get("stream") is True:
            events = stream_events(dialect.stream(body, answer), answer, faults)
            await self._stream(receive, send, events)
        elif faults.cut is not None:
            await self._send_cut(send, orjson.dumps(dialect.message(body, answer)))
        else:
            await self._send(send, 200, orjson.dumps(dialect.message(body, answer)))

    async def _send_cut(self, send: Send, data: bytes) -> None:
        """Announce the whole body, send half of it, drop the connection."""
        headers = self._headers(_JSON)
        headers.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        half = data[: len(data) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
        self.state.stats.responses_cut += 1
        raise _Cut

    async def _stream(self, receive: Receive, send: Send, events: AsyncIterator[bytes]) -> None:
        stats = self.state.stats
        stats.streams_started += 1
        headers = self._headers(_SSE)
        headers.append((b"cache-control", b"no-cache"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})

        async def pump() -> None:
            async for chunk in events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

        try:
            disconnected = await _race_disconnect(receive, pump())
        except _Cut:
            stats.responses_cut += 1
            raise
        if disconnected:
            stats.streams_cancelled += 1
        else:
            stats.streams_completed += 1


def _prompt(messages: list[Any], system: str) -> tuple[str, int]:
    """The last user text and the prompt word count (all messages plus the system)."""
    last_user = ""
    count = _word_count(system)
    for m in messages:
        if not isinstance(m, dict):
            continue
        text = _text_of(m.get("content"))
        count += _word_count(text)
        if m.get("role") == "user":
            last_user = text
    return last_user, count


# ---------------------------------------------------------------------------------------------
# Small routes.


_CHAT_PATHS = frozenset({OpenAIDialect.path, AnthropicDialect.path})


class _NameHeader:
    """Adds ``x-upstream-name`` to every response (plain ASGI, touches only the start message)."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.header = (b"x-upstream-name", name.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _CHAT_PATHS:
            await self.app(scope, receive, send)  # the chat endpoint names itself, faster
            return

        async def send_named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_named)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def build_app(name: str, kind: str = "openai") -> Starlette:
    """The fake upstream as an ASGI app; ``kind`` is ``"openai"`` or ``"anthropic"``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    _quiet_uvicorn_logs()
    state = UpstreamState(name=name, kind=kind)
    dialect = _DIALECTS[kind](name)
    chat = ChatEndpoint(state, dialect)
    created = int(time.time())

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok", "name": name, "kind": kind})

    async def models(request: Request) -> Response:
        ids = sorted({"gpt-x", "gpt-y", "claude-x", *state.stats.by_model})
        if kind == "anthropic":
            data: list[dict[str, Any]] = [
                {"type": "model", "id": i, "display_name": i, "created_at": "2024-01-01T00:00:00Z"}
                for i in ids
            ]
            return _json({"data": data, "has_more": False, "first_id": ids[0], "last_id": ids[-1]})
        data = [{"id": i, "object": "model", "created": created, "owned_by": name} for i in ids]
        return _json({"object": "list", "data": data})

    async def control(request: Request) -> Response:
        raw = await request.body()
        try:
            spec = orjson.loads(raw) if raw else {}
            state.control = Control(
                fail_status=spec.get("fail_status"),
                retry_after=spec.get("retry_after"),
                hang=bool(spec.get("hang", False)),
                delay_ms=float(spec.get("delay_ms") or 0),
                count=spec.get("count"),
            )
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
            return _json({"error": {"message": f"bad control: {exc}"}}, 400)
        return _json({"ok": True})

    async def reset(request: Request) -> Response:
        state.stats.clear()
        state.control = Control()
        state.recent.clear()
        return _json({"ok": True})

    async def stats(request: Request) -> Response:
        return _json(state.snapshot())

    async def requests(request: Request) -> Response:
        last = int(request.query_params.get("last", "10"))
        items = list(state.recent)
        return _json(items[-last:] if last > 0 else [])

    routes = [
        Route(dialect.path, chat, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/_control", control, methods=["POST"]),
        Route("/_reset", reset, methods=["POST"]),
        Route("/_stats", stats, methods=["GET"]),
        Route("/_requests", requests, methods=["GET"]),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(_NameHeader, name=name)])
    app.state.upstream = state
    return app


def serve(name: str, kind: str, host: str, port: int) -> None:
    """Run the fake upstream with the fastest uvicorn parts available, quietly."""
    import uvicorn

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    config = uvicorn.Config(
        build_app(name, kind),
        host=host,
        port=port,
        loop=loop,
        http=http,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=1,
        backlog=4096,
    )
    _quiet_uvicorn_logs()
    uvicorn.Server(config).run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI / Anthropic upstream for tests.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="upstream")
    parser.add_argument("--kind", choices=KINDS, default="openai")
    args = parser.parse_args(argv)
    serve(args.name, args.kind, args.host, args.port)


if __name__ == "__main__":
    main()
