"""The side lane: requests the gateway sends after a client's answer is done.

Shadow calls and audits are the same thing seen from the request path: once the client has its
whole answer, ask an upstream (a shadow target, or the alias's own targets) for an answer the
client will never see, never cache it, account its cost apart from every tenant's, and compare
it with the answer that was served. ``SideLane`` runs that work in background tasks with a hard
bound on how many run at once: work that finds the lane full is dropped and counted, never
queued, so side traffic can neither add latency to a request nor hold its memory for long.
``ask`` is the one upstream call every kind of side traffic makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sidecache.errors import GatewayError
from sidecache.governance.pricing import Pricing, estimate_tokens

__all__ = ["SideAnswer", "SideLane", "answer_text", "ask", "side_body"]

log = logging.getLogger("sidecache.side")

Work = Callable[[], Awaitable[None]]


@dataclass
class SideAnswer:
    """What one side call produced: an answer or an error, how long it took, what it cost."""

    completion: dict[str, Any] | None
    latency_s: float
    cost_usd: float = 0.0
    error: str = ""
    """A short reason (``upstream_503``, ``upstream_timeout``...) when the call failed."""

    @property
    def text(self) -> str:
        return answer_text(self.completion)


def answer_text(completion: dict[str, Any] | None) -> str:
    """The text of a chat.completion's first choice ('' when there is none)."""
    if not completion:
        return ""
    choices = completion.get("choices") or ()
    if not choices or not isinstance(choices[0], dict):
        return ""
    content = (choices[0].get("message") or {}).get("content")
    return content if isinstance(content, str) else ""


def side_body(body: dict[str, Any]) -> dict[str, Any]:
    """The request as a side call sends it: the same prompt and parameters, one whole answer
    (no stream), nothing the gateway added for itself."""
    return {k: v for k, v in body.items() if k not in ("stream", "stream_options")}


def cost_of(
    pricing: Pricing, completion: dict[str, Any], model: str, prompt_estimate: int
) -> float:
    """USD of one answer at the pricing table (usage estimated when the upstream sent none)."""
    usage = completion.get("usage") or {}
    prompt = int(usage.get("prompt_tokens") or 0) or prompt_estimate
    out = int(usage.get("completion_tokens") or 0) or estimate_tokens(answer_text(completion))
    return pricing.cost(model or str(completion.get("model") or ""), prompt, out)


async def ask(
    call: Callable[[], Awaitable[tuple[dict[str, Any], str]]],
    pricing: Pricing,
    prompt_estimate: int,
) -> SideAnswer:
    """Run one side call: ``call()`` returns ``(completion, upstream model)``. Errors are
    results here (a shadow target that fails is a figure to report, not an exception)."""
    started = time.perf_counter()
    try:
        completion, model = await call()
    except GatewayError as exc:
        return SideAnswer(None, time.perf_counter() - started, error=exc.code or "error")
    latency = time.perf_counter() - started
    return SideAnswer(completion, latency, cost_of(pricing, completion, model, prompt_estimate))


class SideLane:
    """Background tasks with a bound on how many run at once; what exceeds it is dropped.

    ``submit`` is synchronous and never waits: the request path calls it once the client's
    answer is out. Counters are per ``(kind, alias)``.
    """

    def __init__(self, max_in_flight: int, timeout: float) -> None:
        self.max_in_flight = max_in_flight
        self.timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self.started: Counter[tuple[str, str]] = Counter()
        self.dropped: Counter[tuple[str, str]] = Counter()
        self.failed: Counter[tuple[str, str]] = Counter()
        self._closing = False

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def has_room(self) -> bool:
        return not self._closing and len(self._tasks) < self.max_in_flight

    def submit(self, kind: str, alias: str, work: Work) -> bool:
        """Start ``work`` now if the lane has room; else count it as dropped. True if started."""
        if not self.has_room():
            self.dropped[(kind, alias)] += 1
            return False
        self.started[(kind, alias)] += 1
        task = asyncio.get_running_loop().create_task(
            self._run(kind, alias, work), name=f"sidecache-{kind}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _run(self, kind: str, alias: str, work: Work) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await work()
        except TimeoutError:
            self.failed[(kind, alias)] += 1
            log.warning("%s side call for %s cancelled after %gs", kind, alias, self.timeout)
        except asyncio.CancelledError:
            raise
        except Exception:  # side traffic must never take the gateway down
            self.failed[(kind, alias)] += 1
            log.exception("%s side call for %s failed", kind, alias)

    async def wait(self) -> None:
        """Until every side call started so far has ended (tests, benchmarks, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel what is still running (an answer nobody waits for is not worth a shutdown)."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
