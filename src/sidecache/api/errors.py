"""Turning any exception into OpenAI's error JSON: the only place that does so."""

from __future__ import annotations

import logging
import math

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from sidecache.errors import GatewayError

log = logging.getLogger("sidecache")

_HTTP_TYPES = {404: "not_found", 405: "method_not_allowed"}


def error_response(exc: GatewayError, headers: dict[str, str] | None = None) -> Response:
    out = dict(headers or {})
    if exc.retry_after is not None and exc.status in (429, 503):
        out["retry-after"] = str(max(1, math.ceil(exc.retry_after)))
    return Response(
        orjson.dumps(exc.to_dict()),
        status_code=exc.status,
        media_type="application/json",
        headers=out,
    )


async def on_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    body = {
        "error": {
            "message": exc.detail or "error",
            "type": "invalid_request_error",
            "param": None,
            "code": _HTTP_TYPES.get(exc.status_code),
        }
    }
    return Response(orjson.dumps(body), status_code=exc.status_code, media_type="application/json")


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    err = GatewayError("internal gateway error")
    return error_response(err)
