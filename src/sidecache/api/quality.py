"""``POST /v1/cache/feedback`` (a verdict on a hit) and ``GET /admin/cache/audits``.

Feedback is taken from the key that received the hit (found by the ``x-request-id`` or the
``x-sidecache-entry`` it got back) and from the admin key; another key, of this tenant or
another, gets 403. Audit disagreements hold prompts and answers: only the admin sees them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sidecache.api.admin import _int, _json, require_admin
from sidecache.api.respond import ClientGone, read_body
from sidecache.errors import BadRequest, InvalidJSON, ServiceUnavailable
from sidecache.quality import Caller

if TYPE_CHECKING:
    from sidecache.quality import QualityDesk

MAX_REASON = 2000
"""Characters of ``reason`` kept (it is stored for the operator, never interpreted)."""
_FIELDS = frozenset({"request_id", "entry", "verdict", "reason"})


def _desk(request: Request) -> QualityDesk:
    desk: QualityDesk | None = request.app.state.quality
    if desk is None or desk.cache is None:
        raise ServiceUnavailable(
            "the cache is not loaded (or disabled): there are no hits to judge"
        )
    return desk


def _caller(request: Request) -> Caller:
    gate = request.app.state.gate
    authorization = request.headers.get("authorization")
    if gate.is_admin(authorization):
        return Caller(key_id=None, tenant="", admin=True)
    key = gate.authenticate(authorization)  # 401 for a missing, unknown or revoked key
    if key is None:
        return Caller(key_id=None, tenant="anonymous")
    return Caller(key_id=key.id, tenant=key.tenant)


def _verdict(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object: {"request_id" or "entry", "verdict"}')
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}", param=unknown[0])
    verdict = body.get("verdict")
    if verdict not in ("bad", "good"):
        raise BadRequest('verdict must be "bad" or "good"', param="verdict")
    request_id = body.get("request_id")
    if request_id is not None and (not isinstance(request_id, str) or not request_id):
        raise BadRequest("request_id must be a non-empty string", param="request_id")
    entry = body.get("entry")
    if isinstance(entry, str) and entry.isdigit():
        entry = int(entry)
    if entry is not None and (isinstance(entry, bool) or not isinstance(entry, int) or entry < 0):
        raise BadRequest("entry must be an entry id (x-sidecache-entry)", param="entry")
    if request_id is None and entry is None:
        raise BadRequest(
            "name the hit: request_id (its x-request-id) or entry (its x-sidecache-entry)",
            param="request_id",
        )
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise BadRequest("reason must be a string", param="reason")
    return {
        "request_id": request_id,
        "entry_id": entry,
        "verdict": verdict,
        "reason": (reason or "")[:MAX_REASON],
    }


async def feedback(request: Request) -> Response:
    caller = _caller(request)
    server = request.app.state.config.server
    try:
        raw = await read_body(request, server.max_body_bytes, server.body_timeout_seconds)
    except ClientGone:
        return Response(status_code=499)  # nobody is left to answer
    verdict = _verdict(raw)
    return _json(await _desk(request).feedback(caller, **verdict))


async def audits(request: Request) -> Response:
    require_admin(request)
    desk: QualityDesk | None = request.app.state.quality
    limit = _int(request, "limit", 50, 1, 1000)
    model = request.query_params.get("model") or None
    records = await desk.audit_records(limit, model) if desk is not None else []
    return _json({"object": "list", "data": records})
