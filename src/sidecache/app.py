"""Application assembly: the only module that wires the parts together.

``build_app(config)`` returns an ASGI app whose lifespan creates every stateful part and keeps it
on ``app.state``; nothing is built at import time. Start-up is split so the port opens at once:
the lifespan builds what is quick (providers, router, keys, limits, the pipeline) and returns,
so ``/healthz`` answers immediately; the cache (the embedding model, the indexes, the verifier)
loads in a background task, ``/readyz`` says 503 until it is in, and a request that arrives
meanwhile waits a few seconds for it (then goes on uncached). A cache that cannot start (Redis
unreachable, no model) stops the gateway with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from sidecache import providers
from sidecache.api import (
    admin,
    admin_keys,
    chat,
    embeddings,
    errors,
    messages,
    models,
    observe,
    quality,
    responses,
)
from sidecache.api.concurrency import ConcurrencyLimit
from sidecache.config import Config
from sidecache.datadir import private_dir
from sidecache.embeddings import EmbeddingsPath
from sidecache.errors import GatewayError
from sidecache.fleet.link import FleetLink
from sidecache.governance.gate import Gate
from sidecache.governance.pii import Redactor
from sidecache.observability.fleet import FleetStats
from sidecache.observability.quality import QualityCollector
from sidecache.observability.recorder import Recorder
from sidecache.pipeline import Pipeline
from sidecache.quality import QualityDesk
from sidecache.routing.router import Router
from sidecache.tasks import stop_task

log = logging.getLogger("sidecache")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _start_cache(config: Config, data_dir: Path, state: Any, pipeline: Pipeline) -> None:
    """Load the cache and its verifier, then hand them to the pipeline (background task)."""
    from sidecache.cache.semantic import SemanticCache

    cache = state.cache = SemanticCache(config.cache, data_dir)
    await cache.start()
    fleet = getattr(state, "fleet", None)
    if fleet is not None and hasattr(cache.store_backend, "health"):
        # one breaker per process: a request meets a stuck Redis once, not once per part
        cache.store_backend.health = fleet.link.health
    verify = None
    if config.cache.semantic and config.cache.verifier.enabled:
        verify = await asyncio.to_thread(_load_verifier, config)
    state.quality.use_cache(cache)
    pipeline.use_cache(cache, verify)


def _load_verifier(config: Config) -> Any:
    from sidecache.cache.embedder import vectors_id
    from sidecache.cache.verifier import Verifier

    verifier = Verifier.load(config.cache.verifier.model_path or None)
    verifier = verifier.with_cutoff(config.cache.verifier.cutoff)
    vectors = vectors_id(config.cache.embedder)
    if vectors != verifier.vectors:
        log.warning(
            "the hit verifier was trained on vectors of %s, the embedder makes %s:"
            " it judges by the text alone (retrain it with"
            " benchmarks/train_verifier.py for this embedder)",
            verifier.vectors,
            vectors,
        )
    return verifier.for_embedder(vectors).check


def _start_fleet(config: Config, state: Any, gate: Gate) -> FleetLink | None:
    """With a shared Redis, publish this replica's figures for ``/stats?scope=fleet``; returns
    the link made here (when governance did not bring one), for the caller to close."""
    link: FleetLink | None = getattr(gate.state, "link", None)
    shared_cache = config.cache.enabled and config.cache.store == "redis"
    own = None
    if link is None and shared_cache:
        link = own = FleetLink(config.redis)
        own.start()
    if link is not None:
        state.fleet = FleetStats(
            link, lambda: observe.local_snapshot(state), shared_cache=shared_cache
        )
        state.fleet.start()
    return own


def start_line(config: Config, gate: Gate, router: Router) -> str:
    """The one line that tells an operator what this gateway is."""
    s = config.server
    cache = "off"
    if config.cache.enabled:
        cache = f"{config.cache.store}" + (" semantic" if config.cache.semantic else " exact-only")
    aliases = ", ".join(router.routes) or ("pass-through" if config.passthrough_models else "none")
    return (
        f"sidecache listening on http://{s.host}:{s.port} | providers: "
        f"{', '.join(config.providers) or 'none'} | models: {aliases} | cache: {cache} | "
        f"anonymous access: {'on' if gate.anonymous_allowed() else 'off'}"
    )


def build_app(config: Config) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = app.state
        state.config = config
        state.ready = False
        state.fatal = None
        state.cache = None
        data_dir = private_dir(config.server.data_dir)
        upstreams = {name: providers.build(name, p) for name, p in config.providers.items()}
        recorder = state.recorder = Recorder(
            config.observability, log_prompts=config.server.log_prompts
        )
        recorder.start()
        gate = state.gate = Gate(config, recorder, loopback=is_loopback(config.server.host))
        router = state.router = Router(
            config.models,
            upstreams,
            config.routing,
            passthrough=config.passthrough_models,
            on_error=lambda t, exc: recorder.upstream_error(t.provider_name, exc.code or "error"),
            price=gate.pricing.expected_cost,
        )
        await gate.start()
        redactor = Redactor(config.pii.kinds or None) if config.pii.enabled else None
        desk = state.quality = QualityDesk(config, router, gate.pricing, data_dir)
        await desk.start()
        recorder.metrics.registry.register(QualityCollector(desk.snapshot))
        pipeline = state.pipeline = Pipeline(
            config,
            router,
            gate=gate,
            redactor=redactor,
            cache_expected=config.cache.enabled,
            quality=desk,
        )
        state.embeddings = EmbeddingsPath(config, router, gate, pipeline)
        state.fleet = None
        own_link = _start_fleet(config, state, gate)  # publishes what the lines above built

        async def warm_up() -> None:
            try:
                if config.cache.enabled:
                    await _start_cache(config, data_dir, state, pipeline)
            except Exception as exc:
                state.fatal = exc
                message = exc.message if isinstance(exc, GatewayError) else repr(exc)
                log.error("sidecache cannot start: %s", message)
                os.kill(os.getpid(), signal.SIGTERM)  # uvicorn shuts down cleanly
                return
            state.ready = True
            log.info("sidecache ready: %s", "cache loaded" if state.cache else "no cache")

        warming = asyncio.create_task(warm_up(), name="sidecache-warm-up")
        log.info(start_line(config, gate, router))
        try:
            yield
        finally:
            state.ready = False
            await stop_task(warming)
            await desk.aclose()
            if state.cache is not None:
                await state.cache.aclose()
            for p in upstreams.values():
                await p.aclose()
            if state.fleet is not None:
                await state.fleet.aclose()
            if own_link is not None:
                await own_link.aclose()
            await gate.aclose()
            recorder.close()  # after the gate: its last settlements are logged too

    routes = [
        Route("/v1/chat/completions", chat.chat_completions, methods=["POST"]),
        Route("/chat/completions", chat.chat_completions, methods=["POST"]),
        Route("/v1/responses", responses.responses, methods=["POST"]),
        Route("/responses", responses.responses, methods=["POST"]),
        Route("/v1/messages", messages.messages, methods=["POST"]),
        Route("/v1/embeddings", embeddings.embeddings, methods=["POST"]),
        Route("/embeddings", embeddings.embeddings, methods=["POST"]),
        Route("/v1/models", models.list_models, methods=["GET"]),
        Route("/healthz", models.healthz, methods=["GET"]),
        Route("/readyz", models.readyz, methods=["GET"]),
        Route("/metrics", observe.metrics, methods=["GET"]),
        Route("/stats", observe.stats, methods=["GET"]),
        Route("/dashboard", observe.dashboard, methods=["GET"]),
        Route("/admin/cache/stats", admin.cache_stats, methods=["GET"]),
        Route("/admin/cache/entries", admin.cache_entries, methods=["GET"]),
        Route("/admin/cache/entries/{entry_id}", admin.delete_entry, methods=["DELETE"]),
        Route("/admin/cache/flush", admin.flush, methods=["POST"]),
        Route("/admin/cache/audits", quality.audits, methods=["GET"]),
        Route("/v1/cache/feedback", quality.feedback, methods=["POST"]),
        Route("/admin/keys", admin_keys.create_key, methods=["POST"]),
        Route("/admin/keys", admin_keys.list_keys, methods=["GET"]),
        Route("/admin/keys/{key_id}", admin_keys.revoke_key, methods=["DELETE"]),
        Route("/admin/keys/{key_id}/rotate", admin_keys.rotate_key, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(ConcurrencyLimit, limit=config.server.max_connections)],
        exception_handlers={
            GatewayError: errors.on_gateway_error,
            HTTPException: errors.on_http_error,
            Exception: errors.on_unexpected,
        },
    )
