"""Anthropic Messages wire pieces that both directions of translation share.

The upstream adapter (``providers/anthropic.py``: chat -> Messages for an Anthropic upstream)
and the inbound API (``api/anthropic_format.py``: a client speaking Messages, served through the
chat pipeline) map the same things in opposite directions: stop reasons, usage, image blocks and
``tool_use`` blocks against chat ``tool_calls``. Each mapping lives here once, both ways.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "ERROR_TYPES",
    "FINISH_REASONS",
    "STOP_REASONS",
    "chat_usage",
    "error_type",
    "image_block",
    "image_part",
    "tool_calls_of",
    "tool_use_blocks",
]

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
}
"""Anthropic ``stop_reason`` -> chat ``finish_reason``."""

FINISH_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
"""Chat ``finish_reason`` -> Anthropic ``stop_reason``."""

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
"""HTTP status -> the ``error.type`` of an Anthropic error body."""


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def chat_usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    """Anthropic token counts as chat usage."""
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def image_block(part: dict[str, Any]) -> dict[str, Any]:
    """A chat ``image_url`` part (a URL or a ``data:`` URL) as an Anthropic image block."""
    url = (part.get("image_url") or {}).get("url", "")
    if url.startswith("data:") and ";base64," in url:
        media, data = url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def image_part(block: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic image block as a chat ``image_url`` part (the inverse of ``image_block``)."""
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', '')};base64,{source.get('data', '')}"
    else:
        url = str(source.get("url") or "")
    return {"type": "image_url", "image_url": {"url": url}}


def tool_use_blocks(tool_calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat ``tool_calls`` as Anthropic ``tool_use`` blocks (arguments parsed to ``input``)."""
    out = []
    for tc in tool_calls:
        fn = tc.get("function") or {}
        try:
            args = orjson.loads(fn.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            args = {}
        out.append({"type": "tool_use", "id": tc.get("id"), "name": fn.get("name"), "input": args})
    return out


def tool_calls_of(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``tool_use`` blocks among ``blocks`` as chat ``tool_calls`` (the inverse)."""
    return [
        {
            "id": b.get("id"),
            "type": "function",
            "function": {
                "name": b.get("name"),
                "arguments": orjson.dumps(
                    b.get("input") if b.get("input") is not None else {}
                ).decode(),
            },
        }
        for b in blocks
        if isinstance(b, dict) and b.get("type") == "tool_use"
    ]
