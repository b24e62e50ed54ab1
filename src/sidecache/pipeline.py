"""The request path for one chat completion, from a validated request to an answer.

policy -> exact + semantic lookup -> (hit: stored answer, JSON or replayed SSE)
       -> (miss: budget reservation -> single-flight -> router -> provider, streamed through,
           made visible in the cache before the client's last byte, written in the background)

It knows nothing of HTTP: ``chat`` returns an ``Answer`` (a JSON body or an async iterator of
SSE bytes, plus the gateway's headers) and fills in the request's ``Exchange`` as facts become
known; ``api/`` sends the answer and calls ``settle`` exactly once, whatever way the response
ended. Errors are raised as ``GatewayError`` for ``api/`` to render.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from sidecache.config import Config
from sidecache.errors import GatewayError, ModelNotFound, UpstreamError, UpstreamProtocolError
from sidecache.exchange import Exchange, RequestContext
from sidecache.governance.regions import allowed_regions
from sidecache.openai import sse
from sidecache.openai.chunks import ChunkAccumulator, replay_chunks
from sidecache.openai.ids import new_id
from sidecache.openai.schemas import ChatRequest, message_text
from sidecache.openai.stream_format import StreamFormat
from sidecache.routing.choice import RouteRequest
from sidecache.routing.router import Route, Router, TargetState
from sidecache.routing.singleflight import Flight, FlightGroup

if TYPE_CHECKING:
    from sidecache.cache.policy import Decision
    from sidecache.cache.semantic import Hit, SemanticCache, Verify
    from sidecache.governance.gate import Gate
    from sidecache.governance.pii import Redactor
    from sidecache.quality import QualityDesk

log = logging.getLogger("sidecache")

CACHE_WAIT_SECONDS = 5.0
"""How long a request that arrives while the cache loads waits for it before going uncached."""
UNKNOWN_MODEL = "_unknown"
"""The model label of requests for a name that is no alias: clients cannot grow metrics."""


@dataclass
class Answer:
    headers: dict[str, str]
    body: dict[str, Any] | None = None
    stream: AsyncIterator[bytes] | None = None


class Pipeline:
    def __init__(
        self,
        cfg: Config,
        router: Router,
        *,
        cache: SemanticCache | None = None,
        verify: Verify | None = None,
        gate: Gate,
        redactor: Redactor | None = None,
        cache_expected: bool = False,
        quality: QualityDesk | None = None,
    ) -> None:
        """``cache_expected``: a cache is loading and will arrive by ``use_cache``; requests
        wait up to ``CACHE_WAIT_SECONDS`` for it, then go on uncached."""
        self.cfg = cfg
        self.router = router
        self.cache = cache
        self.verify = verify
        self._cache_ready = asyncio.Event()
        if cache is not None or not cache_expected:
            self._cache_ready.set()
        self.flights = FlightGroup()
        self.gate = gate
        self.redactor = redactor
        self.quality = quality
        """Side traffic and hit quality (shadow calls, audits, adaptive thresholds)."""
        self.in_flight = 0
        """Requests opened and not yet settled (for graceful shutdown and tests)."""

    def use_cache(self, cache: SemanticCache, verify: Verify | None) -> None:
        """The cache finished loading: every request from now on looks it up."""
        self.cache, self.verify = cache, verify
        self._cache_ready.set()

    # -- a request's lifetime -----------------------------------------------------------------

    def open(self, ctx: RequestContext) -> Exchange:
        """Start accounting for one request; ``settle`` must follow, exactly once."""
        self.in_flight += 1
        return Exchange(ctx)

    def settle(self, ex: Exchange) -> None:
        """Account a finished request: money, limits, metrics, stats and the access log.

        Idempotent: the one ``finally`` that owns the response calls it in every case; an
        answer that ends normally is settled just before its last byte, so that what the
        client does next (read ``/stats``, send the next request) sees it accounted.
        """
        if ex.settled:
            return
        ex.settled = True
        self.in_flight -= 1
        ex.latency_s = time.perf_counter() - ex.ctx.started
        self.gate.settle(ex)

    def after(self, ex: Exchange) -> None:
        """The response is over, whichever way it ended: start the request's follow-ups (side
        traffic). Called once, after ``settle`` and the last byte."""
        followups, ex.followups = ex.followups, []
        for followup in followups:
            try:
                followup(ex)
            except Exception:  # side traffic never fails a request or the server
                log.exception("a follow-up of request %s failed", ex.ctx.request_id)

    # -- cache ------------------------------------------------------------------------------

    def _decide(
        self, ctx: RequestContext, body: dict[str, Any], route: Route, variant: str
    ) -> Decision | None:
        if self.cache is None or (route.spec is not None and not route.spec.cache):
            return None
        from sidecache.cache.policy import decide

        return decide(
            body,
            tenant=ctx.tenant,
            alias=route.alias,
            namespace=ctx.namespace,
            cache_control=ctx.cache_control,
            cfg=self.cfg.cache,
            space=self.cache.space,
            regions=ctx.regions,
            variant=variant,
        )

    def _threshold(self, ctx: RequestContext, route: Route) -> float:
        if ctx.threshold is not None:
            return ctx.threshold
        if route.spec is not None and route.spec.threshold is not None:
            return route.spec.threshold
        return self.cfg.cache.threshold

    def _verifier(self, route: Route) -> Verify | None:
        if route.spec is not None and route.spec.verifier is not None and not route.spec.verifier:
            return None
        return self.verify

    def _serve_hit(
        self, ex: Exchange, req: ChatRequest, hit: Hit, fmt: StreamFormat | None
    ) -> Answer:
        stored: dict[str, Any] = orjson.loads(hit.entry.response)
        completion = {**stored, "id": new_id(), "created": int(time.time())}
        headers = {
            "x-sidecache": f"hit-{hit.kind}",
            "x-sidecache-similarity": f"{hit.similarity:.4f}",
            "x-sidecache-entry": str(hit.entry.id),
        }
        if ex.variant:
            headers["x-sidecache-variant"] = ex.variant
        ex.outcome = "hit-exact" if hit.kind == "exact" else "hit-semantic"
        ex.saved_usage = stored.get("usage")
        ex.saved_model = stored.get("model", "")
        ex.ttft_s = time.perf_counter() - ex.ctx.started
        if not req.stream:
            return Answer(headers, body=completion)
        include_usage = fmt is not None or bool(
            req.stream_options and req.stream_options.include_usage
        )
        chunks = replay_chunks(
            completion, include_usage=include_usage, chunk_chars=self.cfg.cache.replay_chunk_chars
        )

        async def replay() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield sse.encode(chunk) if fmt is None else fmt.chunk(chunk)
            self.settle(ex)  # before the last byte: the client's next request sees it counted
            yield sse.DONE if fmt is None else fmt.done()

        return Answer(headers, stream=replay())

    async def _store(
        self, ctx: RequestContext, decision: Decision, route: Route, completion: dict[str, Any]
    ) -> None:
        """Make a clean answer visible to the next request (the durable write goes on in the
        background). A cache that fails here costs the entry, never the answer."""
        assert self.cache is not None
        usage = completion.get("usage") or {}
        try:
            await self.cache.put(
                decision,
                completion,
                ttl=ctx.ttl if ctx.ttl is not None else (self.cfg.cache.ttl_seconds or None),
                tenant=ctx.tenant,
                model=route.alias,
                namespace=ctx.namespace or "",
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            )
        except Exception as exc:
            log.warning("cache store failed, answer not cached: %r", exc)

    # -- upstream ---------------------------------------------------------------------------

    async def _run_stream(
        self,
        flight: Flight,
        route: Route,
        body: dict[str, Any],
        ctx: RequestContext,
        decision: Decision | None,
        steer: RouteRequest,
    ) -> None:
        (first, rest), target = await self.router.open_stream(route, body, steer)
        flight.target = target
        flight.first_byte_at = time.perf_counter()
        acc = ChunkAccumulator()
        chunk = first
        try:
            while True:
                acc.add(chunk)
                flight.publish(chunk)
                try:
                    chunk = await rest.__anext__()
                except StopAsyncIteration:
                    break
        except UpstreamError as exc:
            self.router.record(target, exc)
            raise
        finally:
            await rest.aclose()  # type: ignore[attr-defined]
        if not acc.finished:
            raise UpstreamProtocolError(f"{target.provider_name}: stream ended before it finished")
        completion = acc.completion()
        if decision is not None and decision.write:
            await self._store(ctx, decision, route, completion)
        flight.finish(completion)

    async def _run_complete(
        self,
        flight: Flight,
        route: Route,
        body: dict[str, Any],
        ctx: RequestContext,
        decision: Decision | None,
        steer: RouteRequest,
    ) -> None:
        completion, target = await self.router.complete(route, body, steer)
        flight.target = target
        flight.first_byte_at = time.perf_counter()
        choices = completion.get("choices") or []
        finished = bool(choices) and all(c.get("finish_reason") for c in choices)
        if decision is not None and decision.write and finished:
            await self._store(ctx, decision, route, completion)
        flight.finish(completion)

    # -- entry point ------------------------------------------------------------------------

    async def chat(
        self,
        ex: Exchange,
        body: dict[str, Any],
        req: ChatRequest,
        fmt: StreamFormat | None = None,
    ) -> Answer:
        """Answer one request, filling in ``ex``; errors are raised (and marked on ``ex``).

        ``fmt``: a stream is written through it (another API's events) instead of as Chat
        Completions chunks; a JSON answer is always a chat.completion for the caller to turn
        into its own API's shape."""
        try:
            return await self._chat(ex, body, req, fmt)
        except GatewayError as exc:
            ex.fail(exc)
            if exc.status == 404 and ex.model not in self.router.routes:
                ex.model = UNKNOWN_MODEL  # a pass-through name the upstream does not know
            raise

    async def _chat(
        self, ex: Exchange, body: dict[str, Any], req: ChatRequest, fmt: StreamFormat | None
    ) -> Answer:
        ctx = ex.ctx
        try:
            route = self.router.resolve(req.model)
        except ModelNotFound:
            ex.model = UNKNOWN_MODEL
            raise
        ex.model = route.alias if route.spec is not None else req.model
        ctx.user = req.user
        await self.gate.admit(ex, route.alias, body)
        steer = self._steer(ex, body, req, route)
        body, pii_found = self._redact(body)
        if self.cfg.server.log_prompts:
            users = [m for m in body.get("messages") or () if m.get("role") == "user"]
            prompt = message_text(users[-1].get("content")) if users else ""
            ctx.prompt = self.redactor.redact(prompt)[0] if self.redactor else prompt
        if not self._cache_ready.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cache_ready.wait(), CACHE_WAIT_SECONDS)
        pii = self.cfg.pii
        uncacheable = pii_found and (pii.never_cache or not pii.redact_upstream)
        decision = None if uncacheable else self._decide(ctx, body, route, ex.variant)
        ex.outcome = "bypass"
        if decision is not None and self.cache is not None:
            if decision.read:
                if not self.cfg.limits.serve_hits_over_budget:
                    await self.gate.check_budget(ex)
                hit = await self._lookup(ex, decision, route, body)
                if hit is not None:
                    return self._serve_hit(ex, req, hit, fmt)
            if decision.read or decision.write:
                ex.outcome = "miss"
        usable = [
            t.upstream_model
            for t in route.targets
            if ctx.regions is None or t.region in ctx.regions
        ]
        await self.gate.reserve(ex, body, usable)
        if self.quality is not None:
            self.quality.on_upstream(ex, route, body)
        if decision is not None and self.cache is not None:
            self.cache.prepare(decision)
        return await self._upstream(ex, body, req, route, decision, steer, fmt)

    def _steer(
        self, ex: Exchange, body: dict[str, Any], req: ChatRequest, route: Route
    ) -> RouteRequest:
        """What routing needs to know of this request: where it may go (regions), its A/B
        variant, and its expected size (for ``cheapest`` and the targets' own limits)."""
        ctx = ex.ctx
        ctx.regions = allowed_regions(ctx.key, self.cfg.tenants.get(ctx.tenant), ctx.asked_regions)
        steer = RouteRequest(
            regions=ctx.regions,
            prompt_tokens=ex.est_prompt_tokens,
            completion_tokens=self.gate.completions.estimate(route.alias, body),
            stream=bool(req.stream),
        )
        if route.split is not None:
            key_id = ctx.key.id if ctx.key is not None else None
            sticky = route.spec.sticky if route.spec is not None else "key"
            who = (req.user or key_id) if sticky == "user" else (key_id or req.user)
            arm = route.split.assign(who)
            ex.variant, steer.first = arm.label, arm.target
        return steer

    async def _lookup(
        self, ex: Exchange, decision: Decision, route: Route, body: dict[str, Any]
    ) -> Hit | None:
        assert self.cache is not None
        threshold, verify = self._threshold(ex.ctx, route), self._verifier(route)
        if self.quality is None:
            return await self.cache.lookup(decision, threshold=threshold, verify=verify)
        fixed = ex.ctx.threshold is not None
        return await self.quality.lookup(ex, decision, route, body, threshold, verify, fixed=fixed)

    async def _upstream(
        self,
        ex: Exchange,
        body: dict[str, Any],
        req: ChatRequest,
        route: Route,
        decision: Decision | None,
        steer: RouteRequest,
        fmt: StreamFormat | None = None,
    ) -> Answer:
        stream = bool(req.stream)
        key = None
        if decision is not None and (decision.read or decision.write):
            key = f"{decision.key_hash}:{int(stream)}:{int(decision.write)}"
        runner = self._run_stream if stream else self._run_complete
        ctx = ex.ctx
        flight, leader = self.flights.join(
            key, lambda f: runner(f, route, body, ctx, decision, steer)
        )
        ex.coalesced = not leader
        headers: dict[str, str] = {"x-sidecache": ex.outcome}
        if ex.variant:
            headers["x-sidecache-variant"] = ex.variant
        variant = route.targets[steer.first] if steer.first is not None else None
        if not stream:
            try:
                completion = await flight.wait_result()
            finally:
                flight.detach()
                self._note_target(ex, flight, variant)
            ex.usage = completion.get("usage")
            ex.completion = completion
            return Answer(headers, body=completion)
        try:
            await flight.first()
        except BaseException:
            flight.detach()
            self._note_target(ex, flight, variant)
            raise
        self._note_target(ex, flight, variant)
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return Answer(headers, stream=self._relay(flight, ex, include_usage, fmt))

    def _redact(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """With PII redaction on: the body to use from here on, and whether PII was found.

        The redacted body goes upstream (and into the cache) only with ``pii.redact_upstream``;
        otherwise the answer is made from, and may repeat, the original values, so the request
        is not cached at all (see ``_chat``).
        """
        if self.redactor is None:
            return body, False
        messages, kinds = self.redactor.redact_messages(body.get("messages") or [])
        if not kinds:
            return body, False
        return ({**body, "messages": messages} if self.cfg.pii.redact_upstream else body), True

    def _note_target(self, ex: Exchange, flight: Flight, variant: TargetState | None) -> None:
        target = flight.target
        if target is not None:
            ex.provider = target.provider_name
            ex.upstream_model = target.upstream_model
            ex.fallback = variant is not None and target is not variant
        if flight.first_byte_at is not None:
            ex.ttft_s = max(0.0, flight.first_byte_at - ex.ctx.started)

    async def _relay(
        self, flight: Flight, ex: Exchange, include_usage: bool, fmt: StreamFormat | None = None
    ) -> AsyncIterator[bytes]:
        """Send the flight's chunks as SSE; an error after the first byte becomes an error event.

        Closing this generator early (the client left) detaches from the flight, which cancels
        the upstream call once no follower is left; what was received until then is billed.
        """
        usage = None
        try:
            async for batch in flight.follow():
                out = []
                for chunk in batch:
                    if "usage" in chunk:
                        if chunk["usage"]:
                            usage = chunk["usage"]
                        if fmt is None and not include_usage:
                            if not chunk.get("choices"):
                                continue  # the usage chunk the gateway asked for, not the client
                            chunk = {k: v for k, v in chunk.items() if k != "usage"}
                    out.append(sse.encode(chunk) if fmt is None else fmt.chunk(chunk))
                if out:
                    yield b"".join(out)
        except (Exception, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and flight.error is not exc:
                raise  # this task is being cancelled (client gone, shutdown), not the flight
            err = exc if isinstance(exc, GatewayError) else UpstreamError(f"stream failed: {exc}")
            ex.fail(err)
            ex.completion = _partial(flight)
            self.settle(ex)
            yield sse.encode(err.to_dict()) if fmt is None else fmt.error(err)
            return
        finally:
            flight.detach()
            if ex.completion is None and flight.result is None:
                ex.completion = _partial(flight)  # the client left: bill what it cost so far
        ex.usage = usage
        ex.completion = flight.result
        self.settle(ex)  # before the last byte: the client's next request sees it counted
        yield sse.DONE if fmt is None else fmt.done()


def _partial(flight: Flight) -> dict[str, Any] | None:
    """What a stream that did not finish had produced, as a completion (for billing)."""
    if not flight.chunks:
        return None
    acc = ChunkAccumulator()
    for chunk in flight.chunks:
        acc.add(chunk)
    return acc.completion()
