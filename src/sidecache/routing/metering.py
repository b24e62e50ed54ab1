"""A call's accounting on its target: requests in flight, latency, tokens against its quota.

The router opens the account when it sends a call (``health.begin``) and closes it when the
answer is over: at once for a whole answer, and for a stream when ``MeteredStream`` (the rest of
the stream, after its first chunk) ends or is closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sidecache.routing.router import TargetState


class MeteredStream:
    """The rest of a stream, noting when it ends (health) and what it used (quota).

    A class rather than an async generator: ``aclose`` must end the call's accounting even if
    the stream was never iterated (its reader cancelled before the first ``__anext__``), which
    an async generator's ``finally`` would not run.
    """

    def __init__(
        self,
        t: TargetState,
        first: dict[str, Any],
        it: AsyncIterator[dict[str, Any]],
        started: float,
        tokens: int,
    ) -> None:
        self.t, self.it, self.started, self.tokens = t, it, started, tokens
        self.usage = first.get("usage")
        self.closed = False

    def __aiter__(self) -> MeteredStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            chunk = await self.it.__anext__()
        except StopAsyncIteration:
            self.t.health.finished(self.started)
            await self.aclose()
            raise
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        return chunk

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.t.health.end()
        settle_quota(self.t, self.tokens, self.usage)
        await self.it.aclose()  # type: ignore[attr-defined]


def settle_quota(t: TargetState, charged: int, usage: Any) -> None:
    """Replace the tokens a call was charged at its expected size with what it used."""
    if t.quota is not None and isinstance(usage, dict) and charged:
        used = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
        if used:
            t.quota.settle(charged, used)
