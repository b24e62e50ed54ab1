"""``GET /v1/models`` and the health endpoints."""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sidecache.errors import UpstreamError
from sidecache.routing.router import Router

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


ENDPOINT_ORDER = ("chat.completions", "responses", "messages", "embeddings")


def _endpoints(router: Router, alias: str) -> list[str]:
    """The endpoints every target of ``alias`` can serve (pass-through: its provider's)."""
    route = router.routes.get(alias)
    providers = (
        [t.provider for t in route.targets] if route else list(router.providers.values())[:1]
    )
    served = set(ENDPOINT_ORDER)
    for p in providers:
        served &= p.endpoints
    return [e for e in ENDPOINT_ORDER if e in served]


async def list_models(request: Request) -> Response:
    """The aliases this key may use, each with the endpoints it serves; in Anthropic's list
    shape for a client that sends ``anthropic-version`` (the ``anthropic`` SDK)."""
    state = request.app.state
    h = request.headers
    authorization = h.get("authorization")
    if not authorization and h.get("x-api-key"):
        authorization = f"Bearer {h['x-api-key']}"
    key = state.gate.authenticate(authorization)
    router: Router = state.router
    aliases = list(router.routes)
    if not aliases and router.passthrough:
        aliases = await _upstream_models(request)
    allowed = [a for a in aliases if key is None or key.allows(a)]
    if h.get("anthropic-version"):
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_STARTED))
        items = [
            {"type": "model", "id": a, "display_name": a, "created_at": created} for a in allowed
        ]
        first, last = (allowed[0], allowed[-1]) if allowed else (None, None)
        return _json({"data": items, "has_more": False, "first_id": first, "last_id": last})
    data = [
        {
            "id": a,
            "object": "model",
            "created": _STARTED,
            "owned_by": "sidecache",
            "endpoints": _endpoints(router, a),
        }
        for a in allowed
    ]
    return _json({"object": "list", "data": data})


async def healthz(request: Request) -> Response:
    return _json({"status": "ok"})


async def readyz(request: Request) -> Response:
    ready = getattr(request.app.state, "ready", False)
    return _json({"status": "ready" if ready else "starting"}, 200 if ready else 503)
