"""``POST /v1/chat/completions``: decode, call the pipeline, encode. Nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from sidecache.api.completion import new_request_id
from sidecache.api.schemas import validate_chat
from sidecache.errors import BadRequest, InvalidJSON, PayloadTooLarge
from sidecache.pipeline import Pipeline
from sidecache.request import RequestContext

T = TypeVar("T")

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing early (by Content-Length) or as soon as it grows past ``limit``."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        parts.append(part)
    return b"".join(parts)


def _float_header(request: Request, name: str, lo: float, hi: float | None) -> float | None:
    value = request.headers.get(name)
    if value is None:
        return None
    try:
        x = float(value)
    except ValueError:
        x = float("nan")
    if not (x >= lo and (hi is None or x <= hi)):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise BadRequest(f"header {name} must be a number {bound}", param=name)
    return x


def _tags(value: str | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in (value or "").split(","):
        k, sep, v = item.partition("=")
        if k.strip():
            tags[k.strip()] = v.strip() if sep else ""
    return tags


def request_context(request: Request) -> RequestContext:
    h = request.headers
    ctx = RequestContext(
        request_id=h.get("x-request-id") or new_request_id(),
        namespace=h.get("x-sidecache-namespace") or None,
        cache_control=h.get("cache-control"),
        threshold=_float_header(request, "x-sidecache-threshold", 0.0, 1.0),
        ttl=_float_header(request, "x-sidecache-ttl", 0.0, None),
        tags=_tags(h.get("x-sidecache-tags")),
    )
    ctx.key = request.app.state.gate.authenticate(h.get("authorization"))
    if ctx.key is not None:
        ctx.tenant = ctx.key.tenant
    return ctx


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Run ``work``; if the client goes away first, cancel it (and so the upstream call)."""
    task = asyncio.ensure_future(work)

    async def watch() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                task.cancel()
                return

    watcher = asyncio.ensure_future(watch())
    try:
        return await task
    finally:
        watcher.cancel()


async def chat_completions(request: Request) -> Response:
    state = request.app.state
    ctx = request_context(request)
    raw = await read_body(request, state.config.server.max_body_bytes)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"request body is not valid JSON: {exc}") from exc
    req = validate_chat(body)
    pipeline: Pipeline = state.pipeline
    answer = await cancel_on_disconnect(request, pipeline.chat(ctx, body, req))
    headers = {"x-request-id": ctx.request_id, **answer.headers}
    if answer.stream is not None:
        return StreamingResponse(
            answer.stream, media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
        )
    return Response(orjson.dumps(answer.body), media_type="application/json", headers=headers)
