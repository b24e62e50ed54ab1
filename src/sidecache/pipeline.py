"""The request path for one chat completion, from a validated request to an answer.

policy -> exact + semantic lookup -> (hit: stored answer, JSON or replayed SSE)
       -> (miss: single-flight -> router -> provider, streamed through, stored on clean finish)

It knows nothing of HTTP: it returns an ``Answer`` (a JSON body or an async iterator of SSE
bytes, plus the gateway's headers) that ``api/chat.py`` turns into a response.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from sidecache.api import sse
from sidecache.api.completion import ChunkAccumulator, new_id, replay_chunks
from sidecache.api.schemas import ChatRequest, message_text
from sidecache.config import Config
from sidecache.errors import GatewayError, UpstreamError, UpstreamProtocolError
from sidecache.request import Outcome, RequestContext
from sidecache.routing.router import Route, Router, TargetState
from sidecache.routing.singleflight import Flight, FlightGroup

log = logging.getLogger("sidecache")

if TYPE_CHECKING:
    from sidecache.cache.policy import Decision
    from sidecache.cache.semantic import Hit, SemanticCache, Verify
    from sidecache.governance.gate import Gate
    from sidecache.governance.pii import Redactor


@dataclass
class Answer:
    headers: dict[str, str]
    body: dict[str, Any] | None = None
    stream: AsyncIterator[bytes] | None = None


def _failed(outcome: Outcome, exc: GatewayError) -> Outcome:
    """Mark an outcome as an error, keeping the provider that failed."""
    outcome.outcome, outcome.status = "error", exc.status
    outcome.error_reason = exc.code or type(exc).__name__
    outcome.provider = outcome.provider or exc.provider
    return outcome


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
    ) -> None:
        self.cfg = cfg
        self.router = router
        self.cache = cache
        self.verify = verify
        self.flights = FlightGroup()
        self.gate = gate
        self.redactor = redactor
        self._background: set[asyncio.Task[Any]] = set()

    # -- accounting -------------------------------------------------------------------------

    def _finish(self, outcome: Outcome) -> None:
        outcome.latency_s = time.perf_counter() - outcome.ctx.started
        self.gate.settle(outcome)

    # -- cache ------------------------------------------------------------------------------

    def _decide(self, ctx: RequestContext, body: dict[str, Any], route: Route) -> Decision | None:
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
        self, ctx: RequestContext, req: ChatRequest, route: Route, hit: Hit, outcome: Outcome
    ) -> Answer:
        stored: dict[str, Any] = orjson.loads(hit.entry.response)
        completion = {**stored, "id": new_id(), "created": int(time.time())}
        headers = {
            "x-sidecache": f"hit-{hit.kind}",
            "x-sidecache-similarity": f"{hit.similarity:.4f}",
            "x-sidecache-entry": str(hit.entry.id),
        }
        outcome.outcome = f"hit-{hit.kind}"
        outcome.saved_usage = stored.get("usage")
        outcome.saved_model = stored.get("model", "")
        if not req.stream:
            outcome.ttft_s = time.perf_counter() - ctx.started
            self._finish(outcome)
            return Answer(headers, body=completion)
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        chunks = replay_chunks(
            completion, include_usage=include_usage, chunk_chars=self.cfg.cache.replay_chunk_chars
        )

        async def replay() -> AsyncIterator[bytes]:
            outcome.ttft_s = time.perf_counter() - ctx.started
            for chunk in chunks:
                yield sse.encode(chunk)
            yield sse.DONE
            self._finish(outcome)

        return Answer(headers, stream=replay())

    def _store_later(
        self, ctx: RequestContext, decision: Decision, route: Route, completion: dict[str, Any]
    ) -> None:
        """Store a clean answer without making the client wait for the disk."""
        if self.cache is None:
            return
        usage = completion.get("usage") or {}
        task = asyncio.create_task(
            self.cache.store(
                decision,
                completion,
                ttl=ctx.ttl if ctx.ttl is not None else (self.cfg.cache.ttl_seconds or None),
                tenant=ctx.tenant,
                model=route.alias,
                namespace=ctx.namespace or "",
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                cost_usd=0.0,
            )
        )
        self._background.add(task)
        task.add_done_callback(self._stored)

    def _stored(self, task: asyncio.Task[Any]) -> None:
        """A failed store is logged and dropped: the client already has its answer."""
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("cache store failed, answer not cached: %r", task.exception())

    # -- upstream ---------------------------------------------------------------------------

    async def _run_stream(
        self,
        flight: Flight,
        route: Route,
        body: dict[str, Any],
        store: Callable[[dict[str, Any]], None],
    ) -> None:
        (first, rest), target = await self.router.open_stream(route, body)
        flight.meta["target"] = target
        flight.meta["ttft"] = time.perf_counter()
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
        flight.finish(completion)
        store(completion)

    async def _run_complete(
        self,
        flight: Flight,
        route: Route,
        body: dict[str, Any],
        store: Callable[[dict[str, Any]], None],
    ) -> None:
        completion, target = await self.router.complete(route, body)
        flight.meta["target"] = target
        flight.meta["ttft"] = time.perf_counter()
        flight.finish(completion)
        choices = completion.get("choices") or []
        if choices and all(c.get("finish_reason") for c in choices):
            store(completion)

    # -- entry point ------------------------------------------------------------------------

    async def chat(self, ctx: RequestContext, body: dict[str, Any], req: ChatRequest) -> Answer:
        """Answer one request; every outcome, errors included, is accounted exactly once."""
        outcome = Outcome(ctx, req.model, "error")
        try:
            return await self._chat(ctx, body, req, outcome)
        except GatewayError as exc:
            self._finish(_failed(outcome, exc))
            raise

    async def _chat(
        self, ctx: RequestContext, body: dict[str, Any], req: ChatRequest, outcome: Outcome
    ) -> Answer:
        route = self.router.resolve(req.model)
        outcome.model = route.alias
        ctx.user = req.user
        ctx.est_tokens = self.gate.admit(ctx.key, route.alias, body)
        body, pii_found = self._redact(body)
        if self.cfg.server.log_prompts:
            users = [m for m in body.get("messages") or () if m.get("role") == "user"]
            prompt = message_text(users[-1].get("content")) if users else ""
            ctx.prompt = self.redactor.redact(prompt)[0] if self.redactor else prompt
        pii = self.cfg.pii
        uncacheable = pii_found and (pii.never_cache or not pii.redact_upstream)
        decision = None if uncacheable else self._decide(ctx, body, route)
        outcome.outcome = "bypass"
        if decision is not None and self.cache is not None:
            if decision.read:
                if not self.cfg.limits.serve_hits_over_budget:
                    self.gate.check_budget(ctx.key)
                hit = await self.cache.lookup(
                    decision, threshold=self._threshold(ctx, route), verify=self._verifier(route)
                )
                if hit is not None:
                    return self._serve_hit(ctx, req, route, hit, outcome)
            if decision.read or decision.write:
                outcome.outcome = "miss"
        self.gate.check_budget(ctx.key)

        def store(completion: dict[str, Any]) -> None:
            if decision is not None and decision.write:
                self._store_later(ctx, decision, route, completion)

        stream = bool(req.stream)
        key = None
        if decision is not None and (decision.read or decision.write):
            key = f"{decision.key_hash}:{int(stream)}:{int(decision.write)}"
        runner = self._run_stream if stream else self._run_complete
        flight, leader = self.flights.join(key, lambda f: runner(f, route, body, store))
        outcome.coalesced = not leader
        headers = {"x-sidecache": outcome.outcome}
        if not stream:
            try:
                completion = await flight.wait_result()
            finally:
                flight.detach()
                self._note_target(outcome, flight)
            outcome.usage = completion.get("usage")
            outcome.completion = completion
            self._finish(outcome)
            return Answer(headers, body=completion)
        try:
            await flight.first()
        except BaseException:
            flight.detach()
            self._note_target(outcome, flight)
            raise
        self._note_target(outcome, flight)
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return Answer(headers, stream=self._relay(flight, outcome, include_usage))

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

    def _note_target(self, outcome: Outcome, flight: Flight) -> None:
        target: TargetState | None = flight.meta.get("target")
        if target is not None:
            outcome.provider = target.provider_name
            outcome.upstream_model = target.upstream_model
        if "ttft" in flight.meta:
            outcome.ttft_s = max(0.0, flight.meta["ttft"] - outcome.ctx.started)

    async def _relay(
        self, flight: Flight, outcome: Outcome, include_usage: bool
    ) -> AsyncIterator[bytes]:
        """Send the flight's chunks as SSE; an error after the first byte becomes an error event."""
        usage = None
        dumps = orjson.dumps
        try:
            async for batch in flight.follow():
                out = []
                for chunk in batch:
                    if "usage" in chunk:
                        if chunk["usage"]:
                            usage = chunk["usage"]
                        if not include_usage:
                            if not chunk.get("choices"):
                                continue  # the usage chunk the gateway asked for, not the client
                            chunk = {k: v for k, v in chunk.items() if k != "usage"}
                    out.append(b"data: " + dumps(chunk) + b"\n\n")
                if out:
                    yield b"".join(out)
        except Exception as exc:
            err = exc if isinstance(exc, GatewayError) else UpstreamError(f"stream failed: {exc}")
            yield sse.encode(err.to_dict())
            self._finish(_failed(outcome, err))
            return
        finally:
            flight.detach()
        yield sse.DONE
        outcome.usage = usage
        outcome.completion = flight.result
        self._finish(outcome)
