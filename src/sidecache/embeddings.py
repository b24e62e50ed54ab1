"""The request path for one embeddings call, from a validated request to an answer.

resolve alias (it must serve embeddings) -> admit (model access, requests/min, the inputs'
estimated tokens against tokens/min) -> one exact lookup per input -> (all found: answered from
the cache) -> budget reservation -> only the inputs not found go upstream, in one call, through
the router (retries, fallback) -> each new vector stored (visible to the next request at once)
-> the answer reassembled in the client's order and encoding.

Accounting is the chat path's: the same ``Exchange``, settled once by the endpoint through
``Gate.settle``. Tokens and dollars spent are those of the inputs sent upstream; tokens and
dollars saved are those the cached inputs cost when they were embedded. A batch answered wholly
from the cache is a ``hit-exact``, one that sent any input upstream a ``miss`` (or ``bypass``
with the cache off); the ``x-sidecache-cached`` header says how many inputs the cache answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

from sidecache.config import Config
from sidecache.errors import BadRequest, GatewayError, ModelNotFound, UpstreamProtocolError
from sidecache.exchange import Exchange
from sidecache.governance.pricing import estimate_tokens
from sidecache.governance.regions import allowed_regions
from sidecache.openai.embeddings import (
    EmbeddingsRequest,
    Input,
    decode_vector,
    encode_vector,
    inputs_of,
    wire_input,
)
from sidecache.pipeline import UNKNOWN_MODEL, Answer
from sidecache.providers.base import EMBEDDINGS
from sidecache.routing.choice import RouteRequest
from sidecache.routing.router import Route, Router

if TYPE_CHECKING:
    from sidecache.cache.policy import Decision
    from sidecache.cache.semantic import SemanticCache
    from sidecache.governance.gate import Gate
    from sidecache.pipeline import Pipeline

__all__ = ["EmbeddingsPath"]

log = logging.getLogger("sidecache")


class _Vector:
    __slots__ = ("model", "tokens", "vector")

    def __init__(self, vector: bytes, tokens: int, model: str) -> None:
        self.vector, self.tokens, self.model = vector, tokens, model


def _estimate(item: Input) -> int:
    return estimate_tokens(item) if isinstance(item, str) else len(item)


def _split(total: int, items: list[Input]) -> list[int]:
    """A batch's token count shared among its inputs in proportion to their estimates."""
    weights = [max(1, _estimate(i)) for i in items]
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    for k in range(total - sum(shares)):
        shares[k % len(shares)] += 1
    return shares


class EmbeddingsPath:
    """Serves ``POST /v1/embeddings`` with the gateway's cache, router and gate."""

    def __init__(self, cfg: Config, router: Router, gate: Gate, pipeline: Pipeline) -> None:
        self.cfg = cfg
        self.router = router
        self.gate = gate
        self.pipeline = pipeline
        """Where the cache is, once it has loaded (``pipeline.cache``)."""

    def _route(self, ex: Exchange, model: str) -> Route:
        try:
            route = self.router.resolve(model)
        except ModelNotFound:
            ex.model = UNKNOWN_MODEL
            raise
        ex.model = route.alias if route.spec is not None else model
        without = sorted(
            {t.provider_name for t in route.targets if EMBEDDINGS not in t.provider.endpoints}
        )
        if without:
            raise BadRequest(
                f"the model `{route.alias}` does not serve embeddings: provider"
                f" {', '.join(without)} has no embeddings API",
                param="model",
                code="model_not_supported",
            )
        return route

    def _decisions(
        self, ex: Exchange, body: dict[str, Any], route: Route, inputs: list[Input]
    ) -> list[Decision] | None:
        cache = self.pipeline.cache
        if cache is None or (route.spec is not None and not route.spec.cache):
            return None
        from sidecache.cache.embedding_keys import embedding_decisions

        ctx = ex.ctx
        return embedding_decisions(
            body,
            inputs,
            tenant=ctx.tenant,
            alias=route.alias,
            namespace=ctx.namespace,
            cache_control=ctx.cache_control,
            cfg=self.cfg.cache,
            regions=ctx.regions,
        )

    async def embed(self, ex: Exchange, body: dict[str, Any], req: EmbeddingsRequest) -> Answer:
        """Answer one request, filling in ``ex``; errors are raised (and marked on ``ex``)."""
        try:
            return await self._embed(ex, body, req)
        except GatewayError as exc:
            ex.fail(exc)
            raise

    async def _embed(self, ex: Exchange, body: dict[str, Any], req: EmbeddingsRequest) -> Answer:
        route = self._route(ex, req.model)
        ex.ctx.user = req.user
        inputs = inputs_of(req)
        await self.gate.admit(ex, route.alias, body, prompt_tokens=sum(map(_estimate, inputs)))
        ctx = ex.ctx
        ctx.regions = allowed_regions(ctx.key, self.cfg.tenants.get(ctx.tenant), ctx.asked_regions)
        decisions = self._decisions(ex, body, route, inputs)
        private, sent = self._pii(inputs)
        cache = self.pipeline.cache
        found: dict[Input, _Vector] = {}
        if decisions is not None and cache is not None and decisions[0].read:
            found = await self._lookup(cache, inputs, decisions, private)
        missing = list(dict.fromkeys(i for i in inputs if i not in found))
        cached = sum(1 for i in inputs if i in found)
        ex.outcome = "bypass" if decisions is None else "miss"
        if not missing:
            ex.outcome = "hit-exact"
            if not self.cfg.limits.serve_hits_over_budget:
                await self.gate.check_budget(ex)
            ex.ttft_s = time.perf_counter() - ex.ctx.started
        else:
            usable = [
                t.upstream_model
                for t in route.targets
                if ctx.regions is None or t.region in ctx.regions
            ]
            await self.gate.reserve(ex, body, usable, completion_tokens=0)
            fresh = await self._upstream(ex, body, route, missing, sent)
            if decisions is not None and cache is not None and decisions[0].write:
                stored = {i: v for i, v in fresh.items() if i not in private}
                await self._store(ex, cache, route, inputs, decisions, stored)
            found.update(fresh)
        if cached:
            saved = {i: v for i, v in found.items() if i not in missing}
            ex.saved_usage = {"prompt_tokens": sum(v.tokens for v in saved.values())}
            ex.saved_model = next(iter(saved.values())).model
        return self._answer(ex, req, inputs, found, cached)

    def _pii(self, inputs: list[Input]) -> tuple[set[Input], dict[Input, str]]:
        """With PII detection on: the inputs that hold PII (never cached), and what goes
        upstream instead of them with ``pii.redact_upstream``."""
        redactor = self.pipeline.redactor
        private: set[Input] = set()
        sent: dict[Input, str] = {}
        if redactor is None:
            return private, sent
        for item in inputs:
            if isinstance(item, str):
                redacted, kinds = redactor.redact(item)
                if kinds:
                    private.add(item)
                    if self.cfg.pii.redact_upstream:
                        sent[item] = redacted
        return private, sent

    async def _lookup(
        self,
        cache: SemanticCache,
        inputs: list[Input],
        decisions: list[Decision],
        private: set[Input],
    ) -> dict[Input, _Vector]:
        unique = {i: d for i, d in zip(inputs, decisions, strict=True) if i not in private}
        hits = await asyncio.gather(*(cache.lookup(d, threshold=1.0) for d in unique.values()))
        found: dict[Input, _Vector] = {}
        for item, hit in zip(unique, hits, strict=True):
            if hit is None:
                continue
            try:
                stored = orjson.loads(hit.entry.response)
                vector = decode_vector(stored["embedding"])
            except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
                continue  # not an embedding entry after all: embed it again
            found[item] = _Vector(vector, hit.entry.prompt_tokens, str(stored.get("model", "")))
        return found

    async def _upstream(
        self,
        ex: Exchange,
        body: dict[str, Any],
        route: Route,
        missing: list[Input],
        sent: dict[Input, str],
    ) -> dict[Input, _Vector]:
        call = {**body, "input": [wire_input(sent.get(i, i)) for i in missing]}
        steer = RouteRequest(regions=ex.ctx.regions, prompt_tokens=ex.est_prompt_tokens)
        result, target = await self.router.embeddings(route, call, steer)
        ex.provider, ex.upstream_model = target.provider_name, target.upstream_model
        ex.ttft_s = time.perf_counter() - ex.ctx.started
        model = str(result.get("model") or target.upstream_model)
        vectors: dict[int, bytes] = {}
        try:
            for item in result["data"]:
                vectors[int(item["index"])] = decode_vector(item["embedding"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamProtocolError(
                f"{target.provider_name}: malformed embeddings: {exc}"
            ) from exc
        if sorted(vectors) != list(range(len(missing))):
            raise UpstreamProtocolError(
                f"{target.provider_name}: {len(vectors)} embeddings for {len(missing)} inputs"
            )
        usage = result.get("usage") or {}
        total = usage.get("prompt_tokens")
        if not isinstance(total, int):
            total = sum(map(_estimate, missing))
            ex.usage_estimated = True
        ex.usage = {"prompt_tokens": total, "completion_tokens": 0, "total_tokens": total}
        ex.completion = {"model": model}
        shares = _split(total, missing)
        return {item: _Vector(vectors[k], shares[k], model) for k, item in enumerate(missing)}

    async def _store(
        self,
        ex: Exchange,
        cache: SemanticCache,
        route: Route,
        inputs: list[Input],
        decisions: list[Decision],
        fresh: dict[Input, _Vector],
    ) -> None:
        ctx = ex.ctx
        ttl = ctx.ttl if ctx.ttl is not None else (self.cfg.cache.ttl_seconds or None)
        todo = {i: d for i, d in zip(inputs, decisions, strict=True) if i in fresh}

        async def put(item: Input, decision: Decision) -> None:
            v = fresh[item]
            stored = {
                "object": "embedding",
                "model": v.model,
                "embedding": encode_vector(v.vector, "base64"),
            }
            await cache.put(
                decision,
                stored,
                ttl=ttl,
                tenant=ctx.tenant,
                model=route.alias,
                namespace=ctx.namespace or "",
                prompt_tokens=v.tokens,
            )

        results = await asyncio.gather(
            *(put(i, d) for i, d in todo.items()), return_exceptions=True
        )
        for r in results:
            if isinstance(r, Exception):
                log.warning("cache store failed, embedding not cached: %r", r)
                break

    def _answer(
        self,
        ex: Exchange,
        req: EmbeddingsRequest,
        inputs: list[Input],
        found: dict[Input, _Vector],
        cached: int,
    ) -> Answer:
        fmt = req.encoding_format
        data = [
            {"object": "embedding", "index": k, "embedding": encode_vector(found[item].vector, fmt)}
            for k, item in enumerate(inputs)
        ]
        tokens = sum(found[item].tokens for item in inputs)
        # the upstream's model name, as for chat: this call's, else the one that made the entries
        model = str((ex.completion or {}).get("model") or next(iter(found.values())).model)
        body = {
            "object": "list",
            "data": data,
            "model": model or req.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        headers = {"x-sidecache": ex.outcome, "x-sidecache-cached": f"{cached}/{len(inputs)}"}
        return Answer(headers, body=body)
