"""``/admin/*``: cache inspection and maintenance, guarded by the admin key.

Only the admin sees prompts of stored entries; a tenant's virtual key never opens these paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sidecache.errors import AuthenticationError, BadRequest, NotFound, ServiceUnavailable

if TYPE_CHECKING:
    from sidecache.cache.semantic import SemanticCache
    from sidecache.cache.store import Entry


# Figures from the cache may be keyed by number (batch sizes) or be numpy scalars.
JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _json(data: object, status: int = 200) -> Response:
    body = orjson.dumps(data, option=JSON_OPTIONS)
    return Response(body, status_code=status, media_type="application/json")


def require_admin(request: Request) -> None:
    gate = request.app.state.gate
    if not gate.admin_key:
        raise AuthenticationError(
            "admin endpoints are disabled: set server.admin_key or SIDECACHE_ADMIN_KEY",
            code="admin_disabled",
        )
    if not gate.is_admin(request.headers.get("authorization"), request.query_params.get("key")):
        raise AuthenticationError("this endpoint needs the admin key", code="invalid_admin_key")


def _cache(request: Request) -> SemanticCache:
    require_admin(request)
    cache: SemanticCache | None = request.app.state.cache
    if cache is None:
        raise ServiceUnavailable("the cache is disabled in this gateway's config")
    return cache


def entry_view(entry: Entry) -> dict[str, Any]:
    """One stored entry as the admin sees it: the prompt and answer text, not vector or bytes."""
    answer = ""
    try:
        choices = orjson.loads(entry.response).get("choices") or []
        answer = (choices[0].get("message") or {}).get("content") or "" if choices else ""
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        pass
    return {
        "id": entry.id,
        "scope": entry.scope,
        "tenant": entry.tenant,
        "model": entry.model,
        "namespace": entry.namespace,
        "prompt": entry.key_text,
        "answer": answer,
        "created": entry.created,
        "expires_at": entry.expires_at,
        "last_hit": entry.last_hit,
        "hits": entry.hits,
        "prompt_tokens": entry.prompt_tokens,
        "completion_tokens": entry.completion_tokens,
        "cost_usd": entry.cost_usd,
    }


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise BadRequest(f"query parameter {name} must be an integer from {lo} to {hi}", param=name)
    return int(raw)


async def cache_stats(request: Request) -> Response:
    cache = _cache(request)
    return _json(cache.stats())  # from memory: cheap and safe on the event loop


async def cache_entries(request: Request) -> Response:
    cache = _cache(request)
    q = request.query_params
    entries = await cache.recent(
        limit=_int(request, "limit", 50, 1, 1000),
        scope=q.get("scope") or None,
        tenant=q.get("tenant") or None,
    )
    return _json({"object": "list", "data": [entry_view(e) for e in entries]})


async def delete_entry(request: Request) -> Response:
    cache = _cache(request)
    raw = request.path_params["entry_id"]
    if not raw.isdigit():
        raise BadRequest("entry id must be an integer", param="entry_id")
    if not await cache.delete(int(raw)):
        raise NotFound(f"no cache entry {raw}")
    return _json({"id": int(raw), "deleted": True})


async def flush(request: Request) -> Response:
    cache = _cache(request)
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise BadRequest("flush body must be JSON: {namespace?, model?, tenant?}") from exc
    if not isinstance(body, dict) or set(body) - {"namespace", "model", "tenant"}:
        raise BadRequest("flush body may only hold namespace, model and tenant")
    deleted = await cache.flush(
        namespace=body.get("namespace"), model=body.get("model"), tenant=body.get("tenant")
    )
    return _json({"deleted": deleted})
