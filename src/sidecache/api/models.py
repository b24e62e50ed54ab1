"""``GET /v1/models`` and the health endpoints."""

from __future__ import annotations

import time

import orjson
from starlette.requests import Request
from starlette.responses import Response

_STARTED = int(time.time())


def _json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def list_models(request: Request) -> Response:
    key = request.app.state.gate.authenticate(request.headers.get("authorization"))
    aliases = [a for a in request.app.state.router.routes if key is None or key.allows(a)]
    data = [
        {"id": a, "object": "model", "created": _STARTED, "owned_by": "sidecache"} for a in aliases
    ]
    return _json({"object": "list", "data": data})


async def healthz(request: Request) -> Response:
    return _json({"status": "ok"})


async def readyz(request: Request) -> Response:
    ready = getattr(request.app.state, "ready", False)
    return _json({"status": "ready" if ready else "starting"}, 200 if ready else 503)
