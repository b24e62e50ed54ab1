"""The one owner of a proxied response's lifetime, from the request's first byte to its last.

Every endpoint that answers through the pipeline is built by ``endpoint(produce)``: a plain
ASGI app that opens the request's ``Exchange``, runs ``produce`` (read and decode the body, call
the pipeline) while watching for the client to leave, sends the answer (JSON, or SSE with the
same watch), and in one ``finally`` closes the answer's stream and settles the exchange. So a
request is accounted exactly once whether it ends in an answer, an error, a client that leaves
before or during the stream, or a server that shuts down; a client that leaves is an access-log
line (status 499), never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sidecache.api.errors import error_response
from sidecache.errors import GatewayError, PayloadTooLarge, RequestTimeout
from sidecache.exchange import Exchange, RequestContext
from sidecache.openai.ids import new_request_id

if TYPE_CHECKING:
    from sidecache.pipeline import Answer, Pipeline

__all__ = ["ClientGone", "endpoint", "read_body"]

log = logging.getLogger("sidecache")

T = TypeVar("T")
Produce = Callable[[Request, Exchange], Awaitable["Answer"]]
RenderError = Callable[[GatewayError, dict[str, str]], Response]

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
JSON_HEADERS = [(b"content-type", b"application/json")]


class ClientGone(Exception):
    """The client closed the connection before the response ended."""


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body, refusing early (by Content-Length) or as soon as it grows past ``limit``;
    a body that has not fully arrived within ``timeout`` seconds is a 408."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for part in request.stream():
                size += len(part)
                if size > limit:
                    raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
                parts.append(part)
    except TimeoutError:
        raise RequestTimeout(
            f"the request body did not arrive within {timeout:g} seconds"
        ) from None
    except ClientDisconnect:
        raise ClientGone from None
    return b"".join(parts)


async def _disconnected(receive: Receive) -> None:
    """Returns once the client has gone (the body must have been read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _race(receive: Receive, work: Awaitable[T]) -> T:
    """Run ``work`` in this task; if the client goes away first, cancel it (and so the
    upstream call) and raise ``ClientGone``. A watcher task listens for the disconnect, so the
    work itself costs no extra task."""
    this = asyncio.current_task()
    assert this is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        await _disconnected(receive)
        gone = True
        this.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise  # cancelled from outside (shutdown)
        this.uncancel()
        raise ClientGone from None
    finally:
        watcher.cancel()


async def _pump(send: Send, stream: AsyncIterator[bytes]) -> None:
    async for part in stream:
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


def _openai_error(exc: GatewayError, headers: dict[str, str]) -> Response:
    return error_response(exc, headers)


class Endpoint:
    """An ASGI app answering through the pipeline (a class, so Starlette's ``Route`` mounts it
    as ASGI instead of wrapping it as a request handler)."""

    def __init__(self, produce: Produce, render_error: RenderError) -> None:
        self.produce = produce
        self.render_error = render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        produce, render_error = self.produce, self.render_error
        request = Request(scope, receive)
        pipeline: Pipeline = request.app.state.pipeline
        ctx = RequestContext(request_id=request.headers.get("x-request-id") or new_request_id())
        ex = pipeline.open(ctx)
        stream: AsyncIterator[bytes] | None = None
        headers = {"x-request-id": ctx.request_id}
        try:
            try:
                answer = await produce(request, ex)
            except GatewayError as exc:
                ex.fail(exc)
                if isinstance(exc, RequestTimeout):
                    headers["connection"] = "close"
                await render_error(exc, headers)(scope, receive, send)
                return
            headers.update(answer.headers)
            if answer.stream is None:
                body = orjson.dumps(answer.body)
                pipeline.settle(ex)  # before the body goes: the client's next request sees it
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [*JSON_HEADERS, *_raw(headers)],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            stream = answer.stream
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [*SSE_HEADERS, *_raw(headers)],
                }
            )
            await _race(receive, _pump(send, stream))
        except (ClientGone, OSError):
            ex.leave()
        except asyncio.CancelledError:
            ex.leave()  # the server is shutting down
            raise
        except Exception as exc:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            ex.fail(GatewayError("internal gateway error"))
            with contextlib.suppress(Exception):  # in the API's own shape, like any error
                await render_error(GatewayError("internal gateway error"), headers)(
                    scope, receive, send
                )
            del exc
        finally:
            if stream is not None:
                with contextlib.suppress(BaseException):
                    await stream.aclose()  # type: ignore[attr-defined]
            pipeline.settle(ex)


def endpoint(produce: Produce, render_error: RenderError = _openai_error) -> Endpoint:
    """An endpoint answering through the pipeline; ``render_error`` gives the error body shape
    of the API it serves (OpenAI's by default)."""
    return Endpoint(produce, render_error)


async def race_client(request: Request, work: Awaitable[T]) -> T:
    """``work`` cancelled if the client leaves first (used by ``produce`` functions once the
    body is read, around the pipeline call)."""
    return await _race(request.receive, work)
