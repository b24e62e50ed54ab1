"""How a streamed chat answer is written for a client that called another API.

The pipeline streams (and replays) OpenAI chat.completion.chunk dicts. A client of the
Responses API or of Anthropic's Messages API gets the same answer as that API's own event
sequence: its endpoint hands the pipeline a ``StreamFormat``, one object per request (the
translation keeps state: ids, open output items, the text so far), and the pipeline writes
every chunk through it. Without one, chunks go out as Chat Completions SSE, untranslated.
"""

from __future__ import annotations

from typing import Any, Protocol

from sidecache.errors import GatewayError

__all__ = ["StreamFormat"]


class StreamFormat(Protocol):
    """Chat chunks in, the client API's SSE bytes out. Every chunk is offered, the usage chunk
    included (the pipeline asks upstreams for usage whenever a format is given)."""

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        """The events for one chunk (``b""`` when it completes none yet)."""
        ...

    def done(self) -> bytes:
        """The closing events of an answer that finished cleanly."""
        ...

    def error(self, err: GatewayError) -> bytes:
        """The events that tell the client the answer failed after its first byte."""
        ...
