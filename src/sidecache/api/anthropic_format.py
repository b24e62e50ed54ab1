"""Anthropic's Messages API inbound (``POST /v1/messages``), translated to and from chat.

A Claude client is served through the chat pipeline like any other: ``to_chat`` turns its
request into the chat request it means (``system`` -> a system message, ``max_tokens`` ->
``max_completion_tokens`` as the Responses API's ``max_output_tokens`` does, so the same question
asked through either API shares a cache scope, content blocks -> parts,
``tool_use`` / ``tool_result`` -> ``tool_calls`` / tool messages, ``stop_sequences`` -> ``stop``,
``tool_choice`` any -> required), ``from_completion`` turns the chat.completion back into a
Message, ``MessageEvents`` writes a streamed answer as Anthropic's event sequence
(``message_start``, ``content_block_start`` / ``_delta`` / ``_stop`` per block,
``message_delta`` with the stop reason and usage, ``message_stop``), and ``error_body`` gives
Anthropic's error shape. Pure functions and one small state machine; the mappings the upstream
adapter shares are in ``providers/anthropic_wire``.

``thinking`` is not forwarded (chat has no such request; the answer has no thinking blocks),
nor are thinking blocks of earlier turns. Tools Anthropic runs itself (web search, code
execution, ...) are refused with a 400: only client tools translate to chat functions.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from msgspec import Meta

from sidecache.errors import BadRequest, GatewayError
from sidecache.openai.decoding import convert
from sidecache.openai.ids import new_id
from sidecache.openai.schemas import MAX_TOKENS, Loose
from sidecache.providers.anthropic_wire import (
    FINISH_REASONS,
    error_type,
    image_part,
    tool_calls_of,
    tool_use_blocks,
)

__all__ = ["MessageEvents", "MessagesRequest", "error_body", "from_completion", "to_chat"]


class MessagesRequest(Loose):
    model: Annotated[str, Meta(min_length=1)]
    max_tokens: Annotated[int, Meta(ge=1, le=MAX_TOKENS)]
    messages: Annotated[list[Any], Meta(min_length=1)]
    system: str | list[Any] | None = None
    stop_sequences: list[str] | None = None
    temperature: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    stream: bool | None = False
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


# Fields translated by hand, or Anthropic-only ones that mean nothing to a chat upstream.
_HANDLED = frozenset(
    {"messages", "system", "max_tokens", "stop_sequences", "tools", "tool_choice", "metadata",
     "stream", "thinking", "service_tier", "container", "context_management", "mcp_servers"}
)  # fmt: skip


def validate_messages(body: object) -> MessagesRequest:
    return convert(body, MessagesRequest)


# -- request: Messages -> chat ----------------------------------------------------------------


def _text(content: Any, where: str) -> str:
    """The text of a ``system`` or ``tool_result`` content: a string or text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        )
    if content is None:
        return ""
    raise BadRequest("content must be a string or a list of text blocks", param=where)


def _user(content: Any, where: str) -> list[dict[str, Any]]:
    """A user turn: tool results first (as tool messages), then the rest as one user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    if not isinstance(content, list):
        raise BadRequest("content must be a string or a list of blocks", param=where)
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        at = f"{where}[{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image":
            parts.append(image_part(block))
        elif kind == "document" and (block.get("source") or {}).get("type") == "base64":
            src = block["source"]
            data = f"data:{src.get('media_type', '')};base64,{src.get('data', '')}"
            parts.append({"type": "file", "file": {"file_data": data}})
        elif kind == "tool_result":
            text = _text(block.get("content"), f"{at}.content")
            out.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
        else:
            raise BadRequest(f"unsupported content block type `{kind}` in a user turn", param=at)
    if parts:
        texts = all(p["type"] == "text" for p in parts)
        merged: Any = "\n".join(p["text"] for p in parts) if texts else parts
        out.append({"role": "user", "content": merged})
    return out


def _assistant(content: Any, where: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    if not isinstance(content, list):
        raise BadRequest("content must be a string or a list of blocks", param=where)
    texts: list[str] = []
    for i, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind not in ("tool_use", "thinking", "redacted_thinking"):
            raise BadRequest(
                f"unsupported content block type `{kind}` in an assistant turn",
                param=f"{where}[{i}]",
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    calls = tool_calls_of(content)
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    return message


def _tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(tools):
        if tool.get("type") not in (None, "custom") or not isinstance(tool.get("name"), str):
            raise BadRequest(
                f"tool type `{tool.get('type')}` is not supported: Anthropic runs it itself;"
                " sidecache translates client tools (name, description, input_schema) only",
                param=f"tools[{i}]",
            )
        fn: dict[str, Any] = {"name": tool["name"]}
        if tool.get("description"):
            fn["description"] = tool["description"]
        fn["parameters"] = tool.get("input_schema") or {"type": "object"}
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(choice: dict[str, Any], chat: dict[str, Any]) -> None:
    kind = choice.get("type")
    if kind in ("auto", "none"):
        chat["tool_choice"] = kind
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise BadRequest("tool_choice.type must be auto, any, tool or none", param="tool_choice")
    if choice.get("disable_parallel_tool_use"):
        chat["parallel_tool_calls"] = False


def to_chat(body: dict[str, Any], req: MessagesRequest) -> dict[str, Any]:
    """The chat request a Messages request means (a plain dict, as the pipeline takes it)."""
    chat: dict[str, Any] = {k: v for k, v in body.items() if k not in _HANDLED}
    messages: list[dict[str, Any]] = []
    if req.system:
        messages.append({"role": "system", "content": _text(req.system, "system")})
    for i, m in enumerate(req.messages):
        where = f"messages[{i}]"
        role = m.get("role") if isinstance(m, dict) else None
        if role == "user":
            messages += _user(m.get("content"), f"{where}.content")
        elif role == "assistant":
            messages.append(_assistant(m.get("content"), f"{where}.content"))
        else:
            raise BadRequest("`role` must be user or assistant", param=f"{where}.role")
    chat["messages"] = messages
    chat["max_completion_tokens"] = req.max_tokens
    if req.stop_sequences:
        chat["stop"] = req.stop_sequences
    if req.tools:
        chat["tools"] = _tools(req.tools)
    if req.tool_choice is not None:
        _tool_choice(req.tool_choice, chat)
    user = (req.metadata or {}).get("user_id")
    if isinstance(user, str) and user:
        chat["user"] = user
    if req.stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


# -- answer: chat -> Message ------------------------------------------------------------------


def _usage(usage: dict[str, Any] | None) -> dict[str, int]:
    usage = usage or {}
    return {
        "input_tokens": int(usage.get("prompt_tokens") or 0),
        "output_tokens": int(usage.get("completion_tokens") or 0),
    }


def from_completion(completion: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion (fresh or from the cache) as an Anthropic Message."""
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = message.get("content") or message.get("refusal") or ""
    if text or not message.get("tool_calls"):
        content.append({"type": "text", "text": text})
    content += tool_use_blocks(message.get("tool_calls") or [])
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model") or "",
        "content": content,
        "stop_reason": FINISH_REASONS.get(choice.get("finish_reason") or "", "end_turn"),
        "stop_sequence": None,
        "usage": _usage(completion.get("usage")),
    }


def error_body(exc: GatewayError) -> bytes:
    """Anthropic's error shape for any gateway error."""
    error = {"type": error_type(exc.status), "message": exc.message}
    return orjson.dumps({"type": "error", "error": error})


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


class MessageEvents:
    """A ``StreamFormat``: one streamed answer's chat chunks as Anthropic stream events."""

    def __init__(self, model: str) -> None:
        self.id = new_id("msg_")
        self.model = model
        self.started = False
        self._block = -1
        """Index of the last content block started."""
        self._open: str | None = None
        """Kind of the open block: "text", "tool" or None."""
        self._tools: dict[int, int] = {}
        """chat tool call index -> content block index."""
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None

    def _start(self, out: list[bytes]) -> None:
        self.started = True
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        out.append(_sse("message_start", {"message": message}))

    def _close(self, out: list[bytes]) -> None:
        if self._open is not None:
            out.append(_sse("content_block_stop", {"index": self._block}))
            self._open = None

    def _begin(self, out: list[bytes], kind: str, block: dict[str, Any]) -> None:
        self._close(out)
        self._block += 1
        self._open = kind
        out.append(_sse("content_block_start", {"index": self._block, "content_block": block}))

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
            text = delta.get("content") or delta.get("refusal")
            if text:
                if self._open != "text":
                    self._begin(out, "text", {"type": "text", "text": ""})
                data = {"index": self._block, "delta": {"type": "text_delta", "text": text}}
                out.append(_sse("content_block_delta", data))
            for tc in delta.get("tool_calls") or ():
                idx = tc.get("index", 0)
                if idx not in self._tools:
                    fn = tc.get("function") or {}
                    block = {
                        "type": "tool_use",
                        "id": tc.get("id"),
                        "name": fn.get("name"),
                        "input": {},
                    }
                    self._begin(out, "tool", block)
                    self._tools[idx] = self._block
                args = (tc.get("function") or {}).get("arguments")
                if args:
                    delta_ = {"type": "input_json_delta", "partial_json": args}
                    out.append(
                        _sse("content_block_delta", {"index": self._tools[idx], "delta": delta_})
                    )
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return b"".join(out)

    def done(self) -> bytes:
        out: list[bytes] = []
        if not self.started:
            self._start(out)
        if self._block < 0:  # an empty answer is still one (empty) text block
            self._begin(out, "text", {"type": "text", "text": ""})
        self._close(out)
        delta = {
            "stop_reason": FINISH_REASONS.get(self._finish or "", "end_turn"),
            "stop_sequence": None,
        }
        out.append(_sse("message_delta", {"delta": delta, "usage": _usage(self._usage)}))
        out.append(_sse("message_stop", {}))
        return b"".join(out)

    def error(self, err: GatewayError) -> bytes:
        out: list[bytes] = []
        if not self.started:
            self._start(out)
        error = {"type": error_type(err.status), "message": err.message}
        out.append(_sse("error", {"error": error}))
        return b"".join(out)
