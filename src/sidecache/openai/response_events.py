"""The Responses API's event stream, written from Chat Completions chunks.

``ResponseEvents`` is a ``StreamFormat``: the pipeline offers it every chat chunk of an answer
(live from an upstream, or replayed from the cache) and it writes the events OpenAI sends for
the same answer, in OpenAI's order, which the ``openai`` SDK's stream accumulator checks::

    response.created, response.in_progress,
    response.output_item.added (message), response.content_part.added,
    response.output_text.delta ..., response.output_text.done, response.content_part.done,
    response.output_item.done,
    (per tool call) response.output_item.added (function_call),
        response.function_call_arguments.delta ..., response.function_call_arguments.done,
        response.output_item.done,
    response.completed | response.incomplete      (or response.failed after an error)

Every event carries a ``sequence_number``; an item's ``output_index`` is its place in the final
``output``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from sidecache.errors import GatewayError
from sidecache.openai.ids import new_id
from sidecache.openai.responses import (
    ResponsesRequest,
    call_item,
    envelope,
    message_item,
    status_of,
    text_part,
    usage_of,
)

__all__ = ["ResponseEvents"]


class _Call:
    __slots__ = ("arguments", "call_id", "index", "item_id", "name")

    def __init__(self, item_id: str, index: int, call_id: str, name: str) -> None:
        self.item_id, self.index = item_id, index
        self.call_id, self.name = call_id, name
        self.arguments: list[str] = []


class ResponseEvents:
    """One streamed answer's Responses events (one object per request)."""

    def __init__(self, req: ResponsesRequest) -> None:
        self.req = req
        self.id = new_id("resp_")
        self.created_at = int(time.time())
        self.model = req.model
        self.seq = 0
        self.started = False
        self.items: list[dict[str, Any]] = []
        """Finished output items, in output order."""
        self._text_id: str | None = None
        self._text_index = 0
        self._text: list[str] = []
        self._refusal: list[str] = []
        self._calls: dict[int, _Call] = {}
        self._open_call: _Call | None = None
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None

    # -- framing ------------------------------------------------------------------------------

    def _event(self, kind: str, data: dict[str, Any]) -> bytes:
        data = {"type": kind, "sequence_number": self.seq, **data}
        self.seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def _response(self, status: str, **kw: Any) -> dict[str, Any]:
        return envelope(
            self.req,
            response_id=self.id,
            created_at=self.created_at,
            model=self.model,
            status=status,
            **kw,
        )

    def _start(self, out: list[bytes]) -> None:
        self.started = True
        head = self._response("in_progress", output=[])
        out.append(self._event("response.created", {"response": head}))
        out.append(self._event("response.in_progress", {"response": head}))

    # -- items --------------------------------------------------------------------------------

    def _open_text(self, out: list[bytes]) -> str:
        if self._text_id is None:
            self._close_call(out)
            self._text_id = new_id("msg_")
            self._text_index = len(self.items)
            item = {
                "id": self._text_id,
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            where = {"output_index": self._text_index}
            out.append(self._event("response.output_item.added", {**where, "item": item}))
            if not self._refusal:
                part = {"item_id": self._text_id, **where, "content_index": 0}
                out.append(
                    self._event("response.content_part.added", {**part, "part": text_part("")})
                )
        return self._text_id

    def _close_text(self, out: list[bytes]) -> None:
        if self._text_id is None:
            return
        text = "".join(self._text)
        refusal = "".join(self._refusal) if self._refusal else None
        where = {"item_id": self._text_id, "output_index": self._text_index, "content_index": 0}
        if refusal is None:
            out.append(
                self._event("response.output_text.done", {**where, "text": text, "logprobs": []})
            )
            out.append(
                self._event("response.content_part.done", {**where, "part": text_part(text)})
            )
        item = message_item(self._text_id, text, refusal)
        done = {"output_index": self._text_index, "item": item}
        out.append(self._event("response.output_item.done", done))
        self.items.append(item)
        self._text_id = None
        self._text, self._refusal = [], []

    def _open(self, out: list[bytes], idx: int, call: dict[str, Any]) -> _Call:
        self._close_text(out)
        self._close_call(out)
        fn = call.get("function") or {}
        item_id = new_id("fc_")
        c = self._calls[idx] = _Call(
            item_id, len(self.items), call.get("id") or item_id, fn.get("name") or ""
        )
        item = {
            "id": c.item_id,
            "type": "function_call",
            "status": "in_progress",
            "call_id": c.call_id,
            "name": c.name,
            "arguments": "",
        }
        out.append(
            self._event("response.output_item.added", {"output_index": c.index, "item": item})
        )
        self._open_call = c
        return c

    def _close_call(self, out: list[bytes]) -> None:
        c = self._open_call
        if c is None:
            return
        args = "".join(c.arguments)
        where = {"item_id": c.item_id, "output_index": c.index}
        out.append(
            self._event(
                "response.function_call_arguments.done",
                {**where, "arguments": args, "name": c.name},
            )
        )
        fn = {"name": c.name, "arguments": args}
        item = call_item(c.item_id, {"id": c.call_id, "function": fn})
        out.append(
            self._event("response.output_item.done", {"output_index": c.index, "item": item})
        )
        self.items.append(item)
        self._open_call = None

    # -- StreamFormat -------------------------------------------------------------------------

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        if not self.started:
            self.model = chunk.get("model") or self.model
            self._start(out)
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                item_id = self._open_text(out)
                self._text.append(delta["content"])
                where = {"item_id": item_id, "output_index": self._text_index, "content_index": 0}
                data = {**where, "delta": delta["content"], "logprobs": []}
                out.append(self._event("response.output_text.delta", data))
            if delta.get("refusal"):
                if self._text_id is None:
                    self._refusal.append(delta["refusal"])
                    self._open_text(out)
                else:
                    self._refusal.append(delta["refusal"])
            for tc in delta.get("tool_calls") or ():
                idx = tc.get("index", 0)
                c = self._calls.get(idx) or self._open(out, idx, tc)
                piece = (tc.get("function") or {}).get("arguments")
                if piece:
                    c.arguments.append(piece)
                    where = {"item_id": c.item_id, "output_index": c.index}
                    data = {**where, "delta": piece}
                    out.append(self._event("response.function_call_arguments.delta", data))
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return b"".join(out)

    def _close_all(self, out: list[bytes]) -> None:
        if not self.started:
            self._start(out)
        self._close_text(out)
        self._close_call(out)

    def done(self) -> bytes:
        out: list[bytes] = []
        self._close_all(out)
        if not self.items:  # an empty answer is still one (empty) message
            self._open_text(out)
            self._close_text(out)
        status, incomplete = status_of(self._finish)
        final = self._response(
            status, output=self.items, usage=usage_of(self._usage), incomplete=incomplete
        )
        kind = "response.completed" if status == "completed" else "response.incomplete"
        out.append(self._event(kind, {"response": final}))
        return b"".join(out)

    def error(self, err: GatewayError) -> bytes:
        out: list[bytes] = []
        if not self.started:
            self._start(out)
        error = {"code": err.code or "server_error", "message": err.message}
        failed = self._response("failed", output=self.items, error=error)
        out.append(self._event("response.failed", {"response": failed}))
        return b"".join(out)
