"""The whole fleet's ``/stats``: every replica publishes its figures, any replica sums them.

Each replica writes its own ``/stats`` document into one Redis hash (``P fleet:stats``, field =
replica id) every ``interval`` seconds. ``GET /stats?scope=fleet`` on any replica reads the hash,
keeps the documents of replicas heard from in the last ``window`` seconds (its own is taken
live) and merges them: counts, tokens and dollars add up, rates are recomputed from the sums,
time series add bucket by bucket, and latency percentiles, which cannot be added, are the
slowest replica's. With a shared cache the entry count and size are the store's (the largest
figure any replica reported), not a sum of the same entries. A replica that stopped drops out of
the sum after ``window`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from sidecache.fleet.health import RedisDown
from sidecache.fleet.link import FleetLink
from sidecache.tasks import stop_task

__all__ = ["FleetStats", "merge"]

log = logging.getLogger("sidecache.fleet")

JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
SHARED_GAUGES = frozenset({"entries", "bytes", "vectors", "scopes"})
"""Cache figures that describe the one shared store: the same on every replica."""
LARGEST = frozenset({"uptime_s", "replicas_alive", "keys_stale_seconds", "redis_outages"})
"""Figures every replica sees for itself: the fleet's is the largest, not the sum."""
_STATES = {"closed": 0, "half-open": 1, "open": 2}


def _add(a: Any, b: Any, name: str, shared_cache: bool) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _add(a[k], v, k, shared_cache) if k in a else v
        return out
    if a is None:
        return b
    if isinstance(a, bool) or isinstance(b, bool) or name == "t":  # flags; a bucket's time
        return a
    if isinstance(a, int | float) and isinstance(b, int | float):
        if name.endswith("_ms") or name in LARGEST or (shared_cache and name in SHARED_GAUGES):
            return max(a, b)
        total = a + b
        return round(total, 6) if isinstance(total, float) else total
    return a


def _rates(node: Any) -> None:
    """Recompute every rate from the summed counts it is made of."""
    if isinstance(node, dict):
        if "hit_rate" in node and "hits" in node and "misses" in node:
            lookups = node["hits"] + node["misses"]
            node["hit_rate"] = node["hits"] / lookups if lookups else 0.0
        if "error_rate" in node and "errors" in node and "requests" in node:
            node["error_rate"] = node["errors"] / node["requests"] if node["requests"] else 0.0
        for v in node.values():
            _rates(v)


def _worst(a: Any, b: Any) -> Any:
    def level(x: Any) -> int:
        return _STATES.get(str(x.get("state") if isinstance(x, dict) else x), 0)

    return b if level(b) > level(a) else a


def merge(docs: list[dict[str, Any]], *, shared_cache: bool) -> dict[str, Any]:
    """One ``/stats`` document for several replicas (the first one's shape and time)."""
    out: dict[str, Any] = docs[0]
    for doc in docs[1:]:
        points = {p["t"]: p for p in out.get("series", {}).get("points", [])}
        for p in doc.get("series", {}).get("points", []):
            points[p["t"]] = _add(points[p["t"]], p, "", False) if p["t"] in points else p
        circuits = dict(out.get("circuits") or {})
        for target, state in (doc.get("circuits") or {}).items():
            circuits[target] = _worst(circuits[target], state) if target in circuits else state
        rest = {k: v for k, v in doc.items() if k not in ("series", "circuits", "generated_at")}
        out = _add(out, rest, "", shared_cache)
        if "series" in out:
            out["series"] = {**out["series"], "points": [points[t] for t in sorted(points)]}
        out["circuits"] = circuits
    _rates(out)
    totals = out.get("totals", {})
    lookups = totals.get("hits", 0) + totals.get("misses", 0)
    if lookups and "hit_rate" in out:
        out["hit_rate"] = {
            "overall": totals["hits"] / lookups,
            "exact": totals.get("hit_exact", 0) / lookups,
            "semantic": totals.get("hit_semantic", 0) / lookups,
        }
    return out


def _summary(replica_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": replica_id,
        "generated_at": doc.get("generated_at"),
        "uptime_s": doc.get("uptime_s"),
        "requests": doc.get("totals", {}).get("requests", 0),
        "in_flight": doc.get("in_flight", 0),
    }


class FleetStats:
    """Publishes this replica's ``/stats`` and sums the fleet's (see the module docstring)."""

    def __init__(
        self,
        link: FleetLink,
        snapshot: Callable[[], dict[str, Any]],
        *,
        shared_cache: bool,
        interval: float = 1.0,
        window: float = 10.0,
    ) -> None:
        self.link = link
        self.key = f"{link.prefix}fleet:stats"
        self.snapshot = snapshot
        self.shared_cache = shared_cache
        self.interval = interval
        self.window = window
        self._task: asyncio.Task[None] | None = None

    async def publish(self) -> None:
        """Write this replica's figures now (raises ``RedisDown``)."""
        blob = orjson.dumps(self.snapshot(), option=JSON_OPTIONS)
        r, me = self.link.client, self.link.replica_id

        async def work() -> Any:
            pipe = r.pipeline(transaction=False)
            pipe.hset(self.key, me, blob)
            pipe.pexpire(self.key, int(self.window * 3000))
            return await pipe.execute()

        await self.link.health.call(work)

    async def gather(self, local: dict[str, Any]) -> dict[str, Any]:
        """The fleet's document, given this replica's own (fresh) one. If Redis does not
        answer, this replica's figures alone, saying so (``fleet_error``)."""
        me = self.link.replica_id
        docs, replicas, error = [local], [_summary(me, local)], None
        try:
            stored = await self.link.health.call(lambda: self.link.client.hgetall(self.key))
        except RedisDown as exc:
            stored, error = {}, f"the shared store is not answering ({exc}): this replica only"
        now, stale = time.time(), []
        for raw_id, blob in sorted(stored.items()):
            replica = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            if replica == me:
                continue
            doc = orjson.loads(blob)
            if now - float(doc.get("generated_at", 0)) > self.window:
                stale.append(replica)
                continue
            docs.append(doc)
            replicas.append(_summary(replica, doc))
        if stale:
            with contextlib.suppress(RedisDown):
                await self.link.health.call(lambda: self.link.client.hdel(self.key, *stale))
        doc = merge(docs, shared_cache=self.shared_cache)
        doc["scope"] = "fleet"
        doc["replicas"] = replicas
        if error is not None:
            doc["fleet_error"] = error
        return doc

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sidecache-fleet-stats")

    async def _run(self) -> None:
        while True:
            try:
                await self.publish()
            except RedisDown:
                pass
            except Exception:  # a figure that will not serialise must not stop the loop
                log.exception("fleet stats not published")
            await asyncio.sleep(self.interval)

    async def aclose(self) -> None:
        await stop_task(self._task)
        self._task = None
        with contextlib.suppress(RedisDown):
            me = self.link.replica_id
            await self.link.health.call(lambda: self.link.client.hdel(self.key, me))
