"""``POST /v1/chat/completions``: decode, call the pipeline. The lifetime is ``respond``'s."""

from __future__ import annotations

import math
import re

import orjson
from starlette.requests import Request

from sidecache.api.respond import endpoint, race_client, read_body
from sidecache.errors import BadRequest, InvalidJSON
from sidecache.exchange import Exchange
from sidecache.openai.schemas import validate_chat
from sidecache.pipeline import Answer, Pipeline

MAX_TTL_SECONDS = 10 * 365 * 86_400.0
_REGION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
"""Ten years: longer is a typo or an attack, and ``inf`` would store an entry forever."""


def _float_header(request: Request, name: str, lo: float, hi: float) -> float | None:
    value = request.headers.get(name)
    if value is None:
        return None
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and lo <= x <= hi):
        raise BadRequest(f"header {name} must be a number from {lo:g} to {hi:g}", param=name)
    return x


def _tags(value: str | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in (value or "").split(","):
        k, sep, v = item.partition("=")
        if k.strip():
            tags[k.strip()] = v.strip() if sep else ""
    return tags


def _regions(request: Request) -> frozenset[str] | None:
    value = request.headers.get("x-sidecache-region")
    if value is None:
        return None
    names = frozenset(r.strip() for r in value.split(",") if r.strip())
    if not names or not all(_REGION.match(r) for r in names):
        raise BadRequest(
            "header x-sidecache-region must be region names separated by commas",
            param="x-sidecache-region",
        )
    return names


def authenticate(request: Request, ex: Exchange, *, api_key_header: bool = False) -> None:
    """Fill in the request's context from its headers and key (400 on a bad header, 401).

    ``api_key_header``: the key may also come as ``x-api-key`` (Anthropic's clients)."""
    h = request.headers
    ctx = ex.ctx
    ctx.namespace = h.get("x-sidecache-namespace") or None
    ctx.cache_control = h.get("cache-control")
    ctx.threshold = _float_header(request, "x-sidecache-threshold", 0.0, 1.0)
    ctx.ttl = _float_header(request, "x-sidecache-ttl", 0.0, MAX_TTL_SECONDS)
    ctx.tags = _tags(h.get("x-sidecache-tags"))
    ctx.asked_regions = _regions(request)
    try:
        authorization = h.get("authorization")
        if api_key_header and not authorization and h.get("x-api-key"):
            authorization = f"Bearer {h['x-api-key']}"
        ctx.key = request.app.state.gate.authenticate(authorization)
    except Exception:
        ctx.tenant = ""  # not a tenant: one label for every refused key
        raise
    if ctx.key is not None:
        ctx.tenant = ctx.key.tenant


async def _chat(request: Request, ex: Exchange) -> Answer:
    state = request.app.state
    authenticate(request, ex)
    server = state.config.server
    raw = await read_body(request, server.max_body_bytes, server.body_timeout_seconds)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"request body is not valid JSON: {exc}") from exc
    req = validate_chat(body)
    pipeline: Pipeline = state.pipeline
    return await race_client(request, pipeline.chat(ex, body, req))


chat_completions = endpoint(_chat)
