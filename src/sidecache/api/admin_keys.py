"""``/admin/keys``: virtual keys managed over HTTP with the admin key, as a back office does.

    POST   /admin/keys                  create (the CLI's options as JSON); the key is in the
                                        answer once and never again
    GET    /admin/keys                  list (``?tenant=``, ``?include_revoked=false``)
    DELETE /admin/keys/{id}             revoke: every replica refuses it within a second
    POST   /admin/keys/{id}/rotate      a new secret; the old one works ``grace_seconds`` more

The same store as ``sidecache keys`` (``state.db``, or Redis with ``governance.store =
"redis"``); its writes may block, so they run in a worker thread. Records never carry a hash.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, Literal

import msgspec
import orjson
from msgspec import Meta
from starlette.requests import Request
from starlette.responses import Response

from sidecache.api.admin import require_admin
from sidecache.api.respond import ClientGone, read_body
from sidecache.errors import BadRequest, InvalidJSON, NotFound
from sidecache.governance.backends import Keys
from sidecache.governance.keys import KeyRecord

__all__ = ["create_key", "list_keys", "revoke_key", "rotate_key"]

log = logging.getLogger("sidecache")

MAX_GRACE_SECONDS = 90 * 86_400.0
"""Ninety days: an old secret valid for longer is a revocation forgotten."""
DEFAULT_GRACE_SECONDS = 3600.0


class _Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class CreateKey(_Body):
    tenant: Annotated[str, Meta(min_length=1, max_length=200)]
    models: list[Annotated[str, Meta(min_length=1)]] | None = None
    rpm: Annotated[int, Meta(ge=1, le=10**9)] | None = None
    tpm: Annotated[int, Meta(ge=1, le=10**12)] | None = None
    budget_usd: Annotated[float, Meta(ge=0, le=1e12)] | None = None
    budget_period: Literal["day", "month"] | None = None
    regions: list[Annotated[str, Meta(min_length=1, max_length=64)]] | None = None
    plan: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


class RotateKey(_Body):
    grace_seconds: Annotated[float, Meta(ge=0, le=MAX_GRACE_SECONDS)] = DEFAULT_GRACE_SECONDS


def _json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def key_view(record: KeyRecord, raw: str | None = None) -> dict[str, Any]:
    """A key as the admin sees it: everything but its secret (given once, at creation or
    rotation, as ``key``)."""
    out: dict[str, Any] = {"object": "api_key", **msgspec.to_builtins(record)}
    out["revoked"] = record.revoked
    if raw is not None:
        out["key"] = raw
    return out


async def _decode(request: Request, kind: type[_Body]) -> Any:
    server = request.app.state.config.server
    try:
        raw = await read_body(request, server.max_body_bytes, server.body_timeout_seconds)
    except ClientGone:
        raise BadRequest("the request body did not arrive") from None
    try:
        return msgspec.json.decode(raw.strip() or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        param = _param(str(exc))
        raise BadRequest(f"invalid request body: {exc}", param=param) from exc
    except msgspec.DecodeError as exc:
        raise InvalidJSON(f"request body is not valid JSON: {exc}") from exc


def _param(message: str) -> str | None:
    """``tenant`` from msgspec's "... - at `$.tenant`" or "Object missing required field
    `tenant`"."""
    if "`$." in message:
        return message.split("`$.", 1)[1].split("`", 1)[0].split("[", 1)[0]
    if "field `" in message:
        return message.split("field `", 1)[1].split("`", 1)[0]
    return None


def _keys(request: Request) -> Keys:
    require_admin(request)
    keys: Keys = request.app.state.gate.keys
    return keys


def _existing(keys: Keys, key_id: str) -> KeyRecord:
    record = keys.get(key_id) if key_id.startswith("key_") else None
    if record is None:
        raise NotFound(f"no key with id {key_id!r}", param="id")
    return record


async def create_key(request: Request) -> Response:
    keys = _keys(request)
    body: CreateKey = await _decode(request, CreateKey)
    plans = request.app.state.config.plans
    if body.plan is not None and body.plan not in plans:
        known = ", ".join(sorted(plans)) or "none defined"
        raise BadRequest(f"plan {body.plan!r} is not defined under [plans] ({known})", param="plan")
    raw, record = await asyncio.to_thread(
        keys.create,
        body.tenant,
        models=body.models,
        rpm=body.rpm,
        tpm=body.tpm,
        budget_usd=body.budget_usd,
        budget_period=body.budget_period,
        regions=body.regions,
        plan=body.plan,
    )
    log.info("admin: created key %s for tenant %r", record.id, record.tenant)
    return _json(key_view(record, raw), 201)


async def list_keys(request: Request) -> Response:
    keys = _keys(request)
    q = request.query_params
    flag = (q.get("include_revoked") or "true").lower()
    if flag not in ("true", "false"):
        raise BadRequest("include_revoked must be true or false", param="include_revoked")
    records = keys.list(include_revoked=flag == "true")
    tenant = q.get("tenant")
    if tenant is not None:
        records = [r for r in records if r.tenant == tenant]
    return _json({"object": "list", "data": [key_view(r) for r in records]})


async def revoke_key(request: Request) -> Response:
    keys = _keys(request)
    key_id = request.path_params["key_id"]
    _existing(keys, key_id)
    record = await asyncio.to_thread(keys.revoke, key_id)
    log.info("admin: revoked key %s of tenant %r", record.id, record.tenant)
    return _json(key_view(record))


async def rotate_key(request: Request) -> Response:
    keys = _keys(request)
    key_id = request.path_params["key_id"]
    _existing(keys, key_id)
    body: RotateKey = await _decode(request, RotateKey)
    raw, record = await asyncio.to_thread(keys.rotate, key_id, body.grace_seconds)
    log.info(
        "admin: rotated key %s of tenant %r (old secret valid %gs)",
        record.id,
        record.tenant,
        body.grace_seconds,
    )
    return _json(key_view(record, raw))
