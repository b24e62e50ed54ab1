"""Application assembly: the only module that wires the parts together.

``build_app(config)`` returns a Starlette app whose lifespan creates every stateful part
(provider clients, router, cache, accounting) and keeps it on ``app.state``; nothing is built
at import time.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route

from sidecache import providers
from sidecache.api import admin, chat, errors, models, observe
from sidecache.config import Config
from sidecache.errors import GatewayError
from sidecache.governance.gate import Gate
from sidecache.governance.pii import Redactor
from sidecache.observability.recorder import Recorder
from sidecache.pipeline import Pipeline
from sidecache.routing.router import Router

log = logging.getLogger("sidecache")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_app(config: Config) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = app.state
        state.config = config
        state.ready = False
        data_dir = Path(config.server.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        upstreams = {name: providers.build(name, p) for name, p in config.providers.items()}
        recorder = state.recorder = Recorder(
            config.observability, log_prompts=config.server.log_prompts
        )
        state.router = Router(
            config.models,
            upstreams,
            config.routing,
            passthrough=config.passthrough_models,
            on_error=lambda t, exc: recorder.upstream_error(t.provider_name, exc.code or "error"),
        )
        gate = state.gate = Gate(config, recorder, loopback=is_loopback(config.server.host))
        await gate.start()
        cache = None
        verify = None
        if config.cache.enabled:
            from sidecache.cache.semantic import SemanticCache

            cache = SemanticCache(config.cache, data_dir)
            await cache.start()
            if config.cache.verifier.enabled:
                from sidecache.cache.embedder import vectors_id
                from sidecache.cache.verifier import Verifier

                verifier = Verifier.load(config.cache.verifier.model_path or None)
                vectors = vectors_id(config.cache.embedder)
                if vectors != verifier.vectors:
                    log.warning(
                        "the hit verifier was trained on vectors of %s, the embedder makes %s:"
                        " it judges by the text alone (retrain it with"
                        " benchmarks/train_verifier.py for this embedder)",
                        verifier.vectors,
                        vectors,
                    )
                verify = verifier.for_embedder(vectors).check
        state.cache = cache
        redactor = Redactor(config.pii.kinds or None) if config.pii.enabled else None
        state.pipeline = Pipeline(
            config, state.router, cache=cache, verify=verify, gate=gate, redactor=redactor
        )
        state.ready = True
        log.info(
            "sidecache ready: %d provider(s), %d model alias(es), cache %s",
            len(upstreams),
            len(config.models),
            "on" if cache else "off",
        )
        try:
            yield
        finally:
            state.ready = False
            if cache is not None:
                await cache.aclose()
            for p in upstreams.values():
                await p.aclose()
            await gate.aclose()

    routes = [
        Route("/v1/chat/completions", chat.chat_completions, methods=["POST"]),
        Route("/chat/completions", chat.chat_completions, methods=["POST"]),
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
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            GatewayError: errors.on_gateway_error,
            HTTPException: errors.on_http_error,
            Exception: errors.on_unexpected,
        },
    )
