"""Route a request for a model alias to one of its targets, with retries and fallback.

The alias's strategy orders its targets for the request; one loop walks that order, skipping
targets the request may not use (outside its regions: never, not even on fallback) or that
cannot take it now (circuit open, a Retry-After running, the target's own ``rpm``/``tpm``
reached). Retries happen only before the first byte reaches the client: ``complete`` retries
the whole call, ``open_stream`` retries until a first chunk arrives and then commits to that
target. Between attempts: exponential backoff with jitter. When no target can take the request
now, the router waits for the first that will: a Retry-After within ``retry_after_max``, or
capacity under a target's limits within ``routing.queue_timeout_seconds`` (then 429 with
Retry-After). Every call feeds the target's health estimates (latency, errors, in flight).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sidecache.config import ModelAlias, RoutingConfig, Target
from sidecache.errors import (
    GatewayError,
    ModelNotFound,
    RateLimited,
    ServiceUnavailable,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
)
from sidecache.providers import Provider
from sidecache.routing.breaker import CircuitBreaker
from sidecache.routing.choice import Choice, PriceFn, RouteRequest
from sidecache.routing.health import TargetHealth
from sidecache.routing.metering import MeteredStream, settle_quota
from sidecache.routing.quota import Quota
from sidecache.routing.strategies import STRATEGIES, Strategy
from sidecache.routing.variants import Arm, Split

T = TypeVar("T")


@dataclass(eq=False)
class TargetState:
    """One ``provider/model`` target and what the router knows of its health."""

    key: str
    provider: Provider
    upstream_model: str
    breaker: CircuitBreaker
    blocked_until: float = 0.0
    health: TargetHealth = field(default_factory=TargetHealth)
    quota: Quota | None = None
    """The provider's own ``rpm``/``tpm`` for this target, when declared."""
    region: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def provider_name(self) -> str:
        return self.provider.name

    def snapshot(self) -> dict[str, Any]:
        """What ``/stats`` shows of this target."""
        out: dict[str, Any] = {"circuit": self.breaker.state, **self.health.snapshot()}
        if self.region:
            out["region"] = self.region
        if self.tags:
            out["tags"] = dict(self.tags)
        if self.quota is not None:
            out.update(self.quota.snapshot())
        return out


@dataclass(eq=False)
class Route:
    alias: str
    targets: list[TargetState]
    strategy: Strategy
    spec: ModelAlias | None = None
    split: Split | None = None
    """The alias's A/B split, when it has variants."""


ErrorHook = Callable[[TargetState, GatewayError], None]


class Router:
    def __init__(
        self,
        models: dict[str, ModelAlias],
        providers: dict[str, Provider],
        cfg: RoutingConfig,
        *,
        passthrough: bool = False,
        on_error: ErrorHook | None = None,
        price: PriceFn | None = None,
    ) -> None:
        """``price``: expected USD of a call on an upstream model (for ``cheapest``)."""
        self.cfg = cfg
        self.providers = providers
        self.passthrough = passthrough
        self.on_error = on_error
        self.price = price
        self._targets: dict[str, TargetState] = {}
        self._declared: dict[str, Target] = {}
        for spec in models.values():  # a target's region, tags, limits: from any mention
            for t in spec.all_targets():
                self._declared[t.target] = _merge(self._declared.get(t.target), t)
        self.routes: dict[str, Route] = {
            alias: self._route(alias, spec) for alias, spec in models.items()
        }

    def _target(self, spec: str) -> TargetState:
        """Targets are shared between aliases so health is per target, not per alias."""
        state = self._targets.get(spec)
        if state is None:
            provider, _, model = spec.partition("/")
            b, h = self.cfg.breaker, self.cfg.health
            declared = self._declared.get(spec)
            quota = None
            if declared is not None and (declared.rpm or declared.tpm):
                quota = Quota(declared.rpm, declared.tpm)
            state = self._targets[spec] = TargetState(
                spec,
                self.providers[provider],
                model,
                CircuitBreaker(b.failure_threshold, b.cooldown_seconds),
                health=TargetHealth(h.half_life_seconds, h.window),
                quota=quota,
                region=declared.region if declared is not None else None,
                tags=dict(declared.tags) if declared is not None else {},
            )
        return state

    def _route(self, alias: str, spec: ModelAlias) -> Route:
        targets = spec.all_targets()
        states = [self._target(t.target) for t in targets]
        strategy = STRATEGIES[spec.strategy]([t.weight for t in targets], self.cfg)
        split = None
        if spec.variants:
            index = {t.target: i for i, t in enumerate(targets)}
            arms = [Arm(v.label, index[v.target], v.share) for v in spec.variants]
            split = Split(alias, arms)
        return Route(alias, states, strategy, spec, split)

    def resolve(self, alias: str) -> Route:
        """The route for a model alias; in pass-through mode (no config file) any name goes to
        a provider unchanged, through a route that is not remembered per name."""
        route = self.routes.get(alias)
        if route is not None:
            return route
        if self.passthrough and self.providers and "/" not in alias:
            names = list(self.providers)
            name = "anthropic" if alias.startswith("claude") and "anthropic" in names else names[0]
            # One circuit per provider (its health is the host's), and nothing kept per name.
            shared = self._target(f"{name}/*")
            target = TargetState(
                shared.key, shared.provider, alias, shared.breaker, health=shared.health
            )
            return Route(alias, [target], STRATEGIES["fallback"]([1.0], self.cfg), None)
        known = ", ".join(sorted(self.routes)) or "none"
        raise ModelNotFound(
            f"The model `{alias}` does not exist or is not configured; configured aliases: {known}",
            param="model",
        )

    def circuits(self) -> dict[str, str]:
        return {key: t.breaker.state for key, t in self._targets.items()}

    def targets(self) -> dict[str, dict[str, Any]]:
        """Every configured target's circuit, health estimates and free quota (``/stats``)."""
        return {key: t.snapshot() for key, t in self._targets.items()}

    def record(self, target: TargetState, error: GatewayError | None) -> None:
        """Account the outcome of a call against the target's health."""
        if error is None:
            target.breaker.success()
            target.health.outcome(True)
            return
        if self.on_error is not None:
            self.on_error(target, error)
        if isinstance(error, UpstreamStatusError) and error.upstream_status == 429:
            target.breaker.release()  # rate limited, not unhealthy
            target.health.outcome(False)  # but it did not serve: less reliable for now
        elif isinstance(error, UpstreamError) and error.retryable:
            target.breaker.failure()
            target.health.outcome(False)
        else:
            target.breaker.success()  # the request was bad, the target is fine
            target.health.outcome(True)

    def _pick(
        self, route: Route, order: list[int], pos: int, tokens: int
    ) -> tuple[TargetState | None, int]:
        now = time.monotonic()
        n = len(order)
        for i in range(n):
            t = route.targets[order[(pos + i) % n]]
            if t.blocked_until > now or (t.quota is not None and t.quota.wait(tokens) > 0):
                continue
            if t.breaker.allow():  # last: in half-open, allow() claims the one probe
                if t.quota is not None:
                    t.quota.take(tokens)
                return t, pos + i + 1
        return None, pos

    def _order(self, route: Route, req: RouteRequest) -> list[int]:
        """The strategy's order of the targets this request may use (its variant first)."""
        order = route.strategy.order(Choice(route.targets, req, self.price))
        if req.first is not None and req.first in order:
            order.remove(req.first)
            order.insert(0, req.first)
        if req.regions is not None:
            order = [i for i in order if route.targets[i].region in req.regions]
            if not order:
                raise ServiceUnavailable(
                    f"no target of `{route.alias}` is in {_regions(req.regions)}, and this"
                    f" request may not use targets elsewhere",
                    code="region_unavailable",
                )
        return order

    async def _wait(
        self, route: Route, order: list[int], pos: int, req: RouteRequest, queued: list[float]
    ) -> tuple[TargetState | None, int]:
        """No target can take the request now: wait for the first one that will.

        A Retry-After is waited for once if within ``retry_after_max``; capacity under the
        targets' own limits is waited for until ``queue_timeout_seconds`` after the request
        first found them all full (``queued`` holds that deadline), then ``RateLimited``.
        """
        retry = self.cfg.retry
        while True:
            now = time.monotonic()
            delays: list[tuple[float, bool]] = []
            for i in order:
                t = route.targets[i]
                if t.breaker.state == "open":
                    continue
                quota = t.quota.wait(req.tokens) if t.quota is not None else 0.0
                blocked = t.blocked_until - now
                delays.append((max(quota, blocked, 0.0), quota > 0 and quota >= blocked))
            if not delays:
                return None, pos
            delay, by_quota = min(delays)
            if by_quota:
                if not queued:
                    queued.append(now + self.cfg.queue_timeout_seconds)
                if now + delay > queued[0]:
                    raise RateLimited(
                        f"every target of `{route.alias}` is at its provider's rate limit"
                        f" (rpm/tpm); capacity frees up in {delay:.1f}s",
                        code="upstream_capacity",
                        retry_after=delay,
                    )
            elif delay > retry.retry_after_max:
                return None, pos
            # asyncio may wake a timer up to one clock tick early: add a little
            await asyncio.sleep(delay + 0.005)
            target, pos = self._pick(route, order, pos, req.tokens)
            if target is not None or not by_quota:
                return target, pos

    async def _run(
        self,
        route: Route,
        call: Callable[[TargetState], Awaitable[T]],
        req: RouteRequest | None = None,
    ) -> tuple[T, TargetState]:
        retry = self.cfg.retry
        req = req if req is not None else RouteRequest()
        order = self._order(route, req)
        pos = 0
        queued: list[float] = []
        last: GatewayError | None = None
        for attempt in range(retry.max_attempts):
            target, pos = self._pick(route, order, pos, req.tokens)
            if target is None:
                try:
                    target, pos = await self._wait(route, order, pos, req, queued)
                except RateLimited:
                    if last is not None:
                        break  # the failure says more than the wait that followed it
                    raise
                if target is None:
                    break
            try:
                result = await call(target)
            except UpstreamError as exc:
                exc.provider = target.provider_name
                self.record(target, exc)
                last = exc
                if exc.retry_after is not None:
                    target.blocked_until = time.monotonic() + exc.retry_after
                if not exc.retryable or attempt + 1 >= retry.max_attempts:
                    break
                backoff = min(retry.backoff_max, retry.backoff_base * 2**attempt)
                await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
                continue
            except BaseException:
                target.breaker.release()
                raise
            self.record(target, None)
            return result, target
        if req.regions is not None and len(order) < len(route.targets):
            reason = last.message if last is not None else "circuits open or rate limited"
            raise ServiceUnavailable(
                f"no target of `{route.alias}` in {_regions(req.regions)} could answer"
                f" ({reason}); targets in other regions are never used for this request",
                code="region_unavailable",
                retry_after=self._next_available(route),
            ) from last
        if last is not None:
            raise last
        raise ServiceUnavailable(
            f"no target of `{route.alias}` is available (circuits open or rate limited)",
            retry_after=self._next_available(route),
        )

    @staticmethod
    def _next_available(route: Route) -> float:
        """Seconds until the first of a route's targets may be tried again: its circuit
        half-opens or its upstream's Retry-After ends."""
        now = time.monotonic()
        waits = [max(t.breaker.reopens_in(), t.blocked_until - now, 0.0) for t in route.targets]
        return min(waits, default=1.0)

    def _body(self, body: dict[str, Any], target: TargetState) -> dict[str, Any]:
        return {**body, "model": target.upstream_model}

    async def complete(
        self, route: Route, body: dict[str, Any], req: RouteRequest | None = None
    ) -> tuple[dict[str, Any], TargetState]:
        tokens = req.tokens if req is not None else 0

        async def call(t: TargetState) -> dict[str, Any]:
            started = t.health.begin()
            try:
                result = await t.provider.complete(self._body(body, t))
            finally:
                t.health.end()
            t.health.first_byte(started)
            t.health.finished(started)
            settle_quota(t, tokens, result.get("usage"))
            return result

        return await self._run(route, call, req)

    async def embeddings(
        self, route: Route, body: dict[str, Any], req: RouteRequest | None = None
    ) -> tuple[dict[str, Any], TargetState]:
        """An embeddings call, with the same retries, fallback, regions and limits as
        ``complete``."""
        tokens = req.tokens if req is not None else 0

        async def call(t: TargetState) -> dict[str, Any]:
            t.health.begin()
            try:
                result = await t.provider.embeddings(self._body(body, t))
            finally:
                t.health.end()
            settle_quota(t, tokens, result.get("usage"))
            return result

        return await self._run(route, call, req)

    async def open_stream(
        self, route: Route, body: dict[str, Any], req: RouteRequest | None = None
    ) -> tuple[tuple[dict[str, Any], AsyncIterator[dict[str, Any]]], TargetState]:
        """Retry until a target yields its first chunk; return it with the rest of the stream."""
        tokens = req.tokens if req is not None else 0

        async def call(t: TargetState) -> tuple[dict[str, Any], AsyncIterator[dict[str, Any]]]:
            started = t.health.begin()
            it = t.provider.stream(self._body(body, t)).__aiter__()
            try:
                first = await it.__anext__()
            except StopAsyncIteration:
                t.health.end()
                raise UpstreamProtocolError(
                    f"{t.provider.name}: upstream stream was empty"
                ) from None
            except BaseException:
                t.health.end()
                await it.aclose()  # type: ignore[attr-defined]
                raise
            t.health.first_byte(started)
            return first, MeteredStream(t, first, it, started, tokens)

        return await self._run(route, call, req)


def _regions(regions: frozenset[str]) -> str:
    names = ", ".join(sorted(regions))
    return f"region {names}" if len(regions) == 1 else f"regions {names}"


def _merge(before: Target | None, t: Target) -> Target:
    """One target's declarations: the values any mention sets (the config check made sure
    mentions agree)."""
    if before is None:
        return t
    return Target(
        target=t.target,
        region=before.region or t.region,
        tags=before.tags or t.tags,
        rpm=before.rpm or t.rpm,
        tpm=before.tpm or t.tpm,
    )
