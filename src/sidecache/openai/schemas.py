"""OpenAI Chat Completions request schema, used to validate a request body.

The gateway forwards the client's *original* JSON object to the provider, so fields this schema
does not know pass through untouched; the Struct only checks the fields the gateway reads or
that would make an upstream call pointless (wrong types, empty messages, out-of-range values).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from sidecache.errors import BadRequest

MAX_TOKENS = 10_000_000
"""No model writes more in one answer: a larger ``max_tokens`` is a mistake or an attack, and
is refused here rather than forwarded."""


class Loose(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Wire Structs ignore unknown fields: new OpenAI fields must not break clients."""


class ContentPart(Loose):
    type: str
    text: str | None = None


class Message(Loose):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(Loose):
    include_usage: bool = False


class ChatRequest(Loose):
    model: Annotated[str, Meta(min_length=1)]
    messages: Annotated[list[Message], Meta(min_length=1)]
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: Annotated[int, Meta(ge=1, le=128)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, Meta(ge=1, le=MAX_TOKENS)] | None = None
    max_completion_tokens: Annotated[int, Meta(ge=1, le=MAX_TOKENS)] | None = None
    presence_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    seed: Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)] | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    stop: str | list[str] | None = None
    user: str | None = None
    tools: list[dict[str, Any]] | None = None


def validate_chat(body: object) -> ChatRequest:
    """Check a decoded JSON body; a bad field is a 400 naming the field as ``param``."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    try:
        return msgspec.convert(body, ChatRequest)
    except msgspec.ValidationError as exc:
        text = str(exc)
        param = text.rsplit("at `$.", 1)[1].rstrip("`") if "at `$." in text else None
        raise BadRequest(f"invalid request: {text}", param=param) from exc


def message_text(content: object) -> str:
    """The text of a message's content: a string, or the text parts joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p["text"]
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    return ""
