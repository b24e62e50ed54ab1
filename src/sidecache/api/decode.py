"""Reading a JSON request body, the same way for every endpoint that answers through the
pipeline (size limit 413, slow body 408, bad JSON 400)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from sidecache.api.respond import read_body
from sidecache.errors import InvalidJSON

__all__ = ["read_json"]


async def read_json(request: Request) -> Any:
    server = request.app.state.config.server
    raw = await read_body(request, server.max_body_bytes, server.body_timeout_seconds)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"request body is not valid JSON: {exc}") from exc
