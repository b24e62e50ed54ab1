"""``GET /v1/models`` and the health endpoints."""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sidecache.errors import UpstreamError

log = logging.getLogger("sidecache")

_STARTED = int(time.time())
_UPSTREAM_TTL = 60.0
"""Pass-through mode lists the upstreams' own models, asked at most once a minute."""


def _json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def _upstream_models(request: Request) -> list[str]:
    """Pass-through mode: what the providers themselves list (cached for a minute)."""
    state = request.app.state
    cached = getattr(state, "upstream_models", None)
    if cached is not None and time.monotonic() - cached[0] < _UPSTREAM_TTL:
        names: list[str] = cached[1]
        return names
    providers = list(state.router.providers.values())
    found = await asyncio.gather(*(p.models() for p in providers), return_exceptions=True)
    names = []
    for provider, result in zip(providers, found, strict=True):
        if isinstance(result, UpstreamError):
            log.warning("could not list the models of %s: %s", provider.name, result.message)
        elif isinstance(result, BaseException):
            raise result
        else:
            names += [n for n in result if n not in names]
    state.upstream_models = (time.monotonic(), names)
    return names


async def list_models(request: Request) -> Response:
    state = request.app.state
    key = state.gate.authenticate(request.headers.get("authorization"))
    router = state.router
    aliases = list(router.routes)
    if not aliases and router.passthrough:
        aliases = await _upstream_models(request)
    allowed = [a for a in aliases if key is None or key.allows(a)]
    data = [
        {"id": a, "object": "model", "created": _STARTED, "owned_by": "sidecache"} for a in allowed
    ]
    return _json({"object": "list", "data": data})


async def healthz(request: Request) -> Response:
    return _json({"status": "ok"})


async def readyz(request: Request) -> Response:
    ready = getattr(request.app.state, "ready", False)
    return _json({"status": "ready" if ready else "starting"}, 200 if ready else 503)
