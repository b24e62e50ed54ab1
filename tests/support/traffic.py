"""Racing a gateway as users do: many requests in flight through the real ``openai`` SDK.

``race`` sends chat requests with at most ``concurrency`` in flight and returns one ``Reply``
per request, in order: its status, which fake upstream answered (the fake upstreams sign their
answers ``system_fingerprint = "fp_<name>"``), the gateway's headers and the latency the
client saw. Shared by the routing tests and ``benchmarks/routing.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import openai

from support.gateway import Gateway

__all__ = ["Reply", "ask", "race"]


@dataclass
class Reply:
    status: int
    served_by: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    latency_s: float = 0.0
    error: dict[str, Any] | None = None
    usage: tuple[int, int] | None = None

    @property
    def code(self) -> str | None:
        return (self.error or {}).get("code")


def ask(text: str, model: str = "m", **kw: Any) -> dict[str, Any]:
    """One chat request body (``kw``: ``extra_headers``, ``user``, ``max_tokens``, ...)."""
    return {"model": model, "messages": [{"role": "user", "content": text}], **kw}


async def _one(client: openai.AsyncOpenAI, body: dict[str, Any]) -> Reply:
    started = time.perf_counter()
    try:
        raw = await client.chat.completions.with_raw_response.create(**body)
    except openai.APIStatusError as exc:
        err = exc.body.get("error") if isinstance(exc.body, dict) else None
        if err is None and isinstance(exc.body, dict):
            err = exc.body
        return Reply(
            exc.status_code,
            headers=dict(exc.response.headers),
            latency_s=time.perf_counter() - started,
            error=err if isinstance(err, dict) else {"message": str(exc.body)},
        )
    done = raw.parse()
    fingerprint = done.system_fingerprint or ""
    usage = (done.usage.prompt_tokens, done.usage.completion_tokens) if done.usage else None
    return Reply(
        200,
        served_by=fingerprint.removeprefix("fp_") or None,
        headers=dict(raw.headers),
        latency_s=time.perf_counter() - started,
        usage=usage,
    )


async def race_async(
    gw: Gateway, bodies: Sequence[dict[str, Any]], *, key: str = "sk-test", concurrency: int = 32
) -> list[Reply]:
    client = gw.async_client(key, timeout=60)
    gate = asyncio.Semaphore(concurrency)

    async def one(body: dict[str, Any]) -> Reply:
        async with gate:
            return await _one(client, body)

    try:
        return list(await asyncio.gather(*(one(b) for b in bodies)))
    finally:
        await client.close()


def race(
    gw: Gateway, bodies: Sequence[dict[str, Any]], *, key: str = "sk-test", concurrency: int = 32
) -> list[Reply]:
    """Send ``bodies`` with up to ``concurrency`` in flight; replies in the same order."""
    return asyncio.run(race_async(gw, bodies, key=key, concurrency=concurrency))
