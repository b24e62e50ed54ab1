"""At most ``server.max_connections`` requests at once; past it, an immediate 503.

Slow or stuck clients (a body that trickles in, a stream nobody reads) each hold a file
descriptor and some memory; without a ceiling, a few thousand of them exhaust the process. A
request over the ceiling is refused at once with OpenAI's error shape and ``Retry-After``, and
its connection is closed. Plain ASGI, counting only HTTP requests (not lifespan events).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from sidecache.api.errors import error_response
from sidecache.errors import ServiceUnavailable

__all__ = ["ConcurrencyLimit"]


class ConcurrencyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            exc = ServiceUnavailable(
                f"the gateway is handling its maximum of {self.limit} requests"
                " (server.max_connections); retry shortly",
                code="too_many_connections",
                retry_after=1.0,
            )
            await error_response(exc, {"connection": "close"})(scope, receive, send)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
