"""Route a request for a model alias to one of its targets, with retries and fallback.

Retries happen only before the first byte reaches the client: ``complete`` retries the whole
call, ``open_stream`` retries until a first chunk arrives and then commits to that target.
Between attempts: exponential backoff with jitter, and a target that answered 429 with
``Retry-After`` is not asked again before that time (the router waits for it only when no other
target is available and the wait is within ``retry_after_max``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sidecache.config import ModelAlias, RoutingConfig, Target
from sidecache.errors import (
    GatewayError,
    ModelNotFound,
    ServiceUnavailable,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
)
from sidecache.providers import Provider
from sidecache.routing.breaker import CircuitBreaker
from sidecache.routing.strategies import STRATEGIES, Strategy

T = TypeVar("T")


@dataclass(eq=False)
class TargetState:
    """One ``provider/model`` target and what the router knows of its health."""

    key: str
    provider: Provider
    upstream_model: str
    breaker: CircuitBreaker
    blocked_until: float = 0.0

    @property
    def provider_name(self) -> str:
        return self.provider.name


@dataclass(eq=False)
class Route:
    alias: str
    targets: list[TargetState]
    strategy: Strategy
    spec: ModelAlias | None = None


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
    ) -> None:
        self.cfg = cfg
        self.providers = providers
        self.passthrough = passthrough
        self.on_error = on_error
        self._targets: dict[str, TargetState] = {}
        self.routes: dict[str, Route] = {
            alias: self._route(alias, spec.targets, spec.strategy, spec)
            for alias, spec in models.items()
        }

    def _target(self, spec: str) -> TargetState:
        """Targets are shared between aliases so health is per target, not per alias."""
        state = self._targets.get(spec)
        if state is None:
            provider, _, model = spec.partition("/")
            b = self.cfg.breaker
            state = self._targets[spec] = TargetState(
                spec,
                self.providers[provider],
                model,
                CircuitBreaker(b.failure_threshold, b.cooldown_seconds),
            )
        return state

    def _route(
        self, alias: str, targets: list[Target], strategy: str, spec: ModelAlias | None
    ) -> Route:
        states = [self._target(t.target) for t in targets]
        return Route(alias, states, STRATEGIES[strategy]([t.weight for t in targets]), spec)

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
            target = TargetState(shared.key, shared.provider, alias, shared.breaker)
            return Route(alias, [target], STRATEGIES["fallback"]([1.0]), None)
        known = ", ".join(sorted(self.routes)) or "none"
        raise ModelNotFound(
            f"The model `{alias}` does not exist or is not configured; configured aliases: {known}",
            param="model",
        )

    def circuits(self) -> dict[str, str]:
        return {key: t.breaker.state for key, t in self._targets.items()}

    def record(self, target: TargetState, error: GatewayError | None) -> None:
        """Account the outcome of a call against the target's health."""
        if error is None:
            target.breaker.success()
            return
        if self.on_error is not None:
            self.on_error(target, error)
        if isinstance(error, UpstreamStatusError) and error.upstream_status == 429:
            target.breaker.release()  # rate limited, not unhealthy
        elif isinstance(error, UpstreamError) and error.retryable:
            target.breaker.failure()
        else:
            target.breaker.success()  # the request was bad, the target is fine

    def _pick(self, route: Route, order: list[int], pos: int) -> tuple[TargetState | None, int]:
        now = time.monotonic()
        n = len(order)
        for i in range(n):
            t = route.targets[order[(pos + i) % n]]
            if t.blocked_until <= now and t.breaker.allow():
                return t, pos + i + 1
        return None, pos

    async def _run(
        self, route: Route, call: Callable[[TargetState], Awaitable[T]]
    ) -> tuple[T, TargetState]:
        retry = self.cfg.retry
        order = route.strategy.order()
        pos = 0
        last: GatewayError | None = None
        for attempt in range(retry.max_attempts):
            target, pos = self._pick(route, order, pos)
            if target is None:
                waiting = [t for t in route.targets if t.breaker.state != "open"]
                soonest = min((t.blocked_until for t in waiting), default=None)
                delay = None if soonest is None else soonest - time.monotonic()
                if delay is None or delay > retry.retry_after_max:
                    break
                # asyncio may wake a timer up to one clock tick early: add a little
                await asyncio.sleep(max(0.0, delay) + 0.005)
                target, pos = self._pick(route, order, pos)
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
        self, route: Route, body: dict[str, Any]
    ) -> tuple[dict[str, Any], TargetState]:
        return await self._run(route, lambda t: t.provider.complete(self._body(body, t)))

    async def embeddings(
        self, route: Route, body: dict[str, Any]
    ) -> tuple[dict[str, Any], TargetState]:
        """An embeddings call, with the same retries and fallback as ``complete``."""
        return await self._run(route, lambda t: t.provider.embeddings(self._body(body, t)))

    async def open_stream(
        self, route: Route, body: dict[str, Any]
    ) -> tuple[tuple[dict[str, Any], AsyncIterator[dict[str, Any]]], TargetState]:
        """Retry until a target yields its first chunk; return it with the rest of the stream."""

        async def call(t: TargetState) -> tuple[dict[str, Any], AsyncIterator[dict[str, Any]]]:
            it = t.provider.stream(self._body(body, t)).__aiter__()
            try:
                first = await it.__anext__()
            except StopAsyncIteration:
                raise UpstreamProtocolError(
                    f"{t.provider.name}: upstream stream was empty"
                ) from None
            except BaseException:
                await it.aclose()  # type: ignore[attr-defined]
                raise
            return first, it

        return await self._run(route, call)
