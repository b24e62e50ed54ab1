"""Server-sent events: encoding for clients and decoding of upstream streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


def encode(data: dict[str, Any]) -> bytes:
    """One ``data:`` event; orjson never emits newlines, so no escaping is needed."""
    return b"data: " + orjson.dumps(data) + b"\n\n"


class Event:
    __slots__ = ("data", "event")

    def __init__(self, event: str, data: str) -> None:
        self.event = event
        self.data = data


async def iter_events(lines: AsyncIterator[str]) -> AsyncIterator[Event]:
    """Parse SSE from lines (``httpx.Response.aiter_lines``) into events.

    Implements the parts of the SSE grammar providers use: ``event:``, multi-line ``data:``,
    comments (``:``) and blank-line dispatch. A final event without a blank line is dispatched too.
    """
    event = ""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield Event(event or "message", "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
    if data:
        yield Event(event or "message", "\n".join(data))
