"""The chat endpoint: a plain ASGI callable (no per-request Response objects), so the
overhead benchmark measuring through it sees well under a millisecond of upstream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from support.fake_upstream.answers import label_key, text_of, word_count
from support.fake_upstream.dialects import AnthropicDialect, Dialect, new_id, stream_events
from support.fake_upstream.faults import Cut, parse_directives
from support.fake_upstream.state import UpstreamState, record

_JSON = b"application/json"
_SSE = b"text/event-stream; charset=utf-8"
_HANG_SECONDS = 3600.0


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
            headers.append((b"request-id", new_id("req_").encode()))
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
        record(state, scope, raw, body)
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
        if state.answers:
            last_user = state.answers.get(label_key(last_user), last_user)
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
        raise Cut

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
        except Cut:
            stats.responses_cut += 1
            raise
        if disconnected:
            stats.streams_cancelled += 1
        else:
            stats.streams_completed += 1


def _prompt(messages: list[Any], system: str) -> tuple[str, int]:
    """The last user text and the prompt word count (all messages plus the system)."""
    last_user = ""
    count = word_count(system)
    for m in messages:
        if not isinstance(m, dict):
            continue
        text = text_of(m.get("content"))
        count += word_count(text)
        if m.get("role") == "user":
            last_user = text
    return last_user, count
