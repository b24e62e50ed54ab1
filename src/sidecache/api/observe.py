"""``/metrics`` (Prometheus text), ``/stats`` (JSON) and ``/dashboard`` (one HTML page)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sidecache.api.admin import JSON_OPTIONS, require_admin
from sidecache.errors import BadRequest
from sidecache.observability.dashboard import CONTENT_TYPE, dashboard_html

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


async def _refresh(request: Request) -> dict[str, Any]:
    """Gauges read at scrape time: cache size and circuit states."""
    return refresh(request.app.state)


def local_snapshot(state: Any) -> dict[str, Any]:
    """This replica's ``/stats`` document (the fleet view publishes it too)."""
    doc: dict[str, Any] = state.recorder.snapshot(refresh(state))
    return doc


def refresh(state: Any) -> dict[str, Any]:
    """Gauges read at scrape time: cache size and circuit states."""
    recorder = state.recorder
    circuits = state.router.circuits()
    for target, status in circuits.items():
        recorder.set_circuit(target, status == "open")
    extra: dict[str, Any] = {"circuits": circuits, "in_flight": state.pipeline.in_flight}
    extra["targets"] = state.router.targets()
    extra["budget_alerts"] = state.gate.alerts.snapshot()
    shared = getattr(state.gate.state, "figures", None)
    if shared is not None:
        extra["shared_state"] = shared()
    if state.cache is not None:
        cache_stats = state.cache.stats()  # from memory: cheap and safe on the event loop
        recorder.set_cache_size(cache_stats.get("entries", 0), cache_stats.get("bytes", 0))
        extra["cache"] = cache_stats
    if state.quality is not None:
        extra["quality"] = state.quality.snapshot()
    return extra


def _guard(request: Request) -> None:
    if request.app.state.gate.admin_key:
        require_admin(request)


async def metrics(request: Request) -> Response:
    _guard(request)
    extra = await _refresh(request)
    recorder = request.app.state.recorder
    recorder.routing.refresh(recorder.snapshot(extra), extra["targets"])
    return Response(recorder.metrics.render(), media_type=PROMETHEUS)


async def stats(request: Request) -> Response:
    """``?scope=fleet``: summed over every replica on the shared Redis (``observability.fleet``)."""
    _guard(request)
    scope = request.query_params.get("scope") or "replica"
    if scope not in ("replica", "fleet"):
        raise BadRequest("scope must be replica or fleet", param="scope")
    doc = local_snapshot(request.app.state)
    if scope == "fleet":
        fleet = getattr(request.app.state, "fleet", None)
        if fleet is None:
            raise BadRequest(
                'scope=fleet needs a shared Redis (governance.store or cache.store = "redis")',
                param="scope",
            )
        doc = await fleet.gather(doc)
    body = orjson.dumps(doc, option=JSON_OPTIONS)
    return Response(body, media_type="application/json", headers={"cache-control": "no-store"})


async def dashboard(request: Request) -> Response:
    return Response(dashboard_html(), media_type=CONTENT_TYPE)
