"""The fake upstream as an ASGI app and as a process (``python -m support.fake_upstream``)."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import time
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from support.fake_upstream.answers import load_labels
from support.fake_upstream.dialects import DIALECTS, AnthropicDialect, OpenAIDialect
from support.fake_upstream.embeddings import embeddings_endpoint
from support.fake_upstream.endpoint import ChatEndpoint
from support.fake_upstream.faults import Control, Cut
from support.fake_upstream.state import UpstreamState

KINDS = ("openai", "anthropic")
MODELS = ("gpt-x", "gpt-y", "claude-x")


class _QuietFilter(logging.Filter):
    """Drop the tracebacks uvicorn logs for connections we cut on purpose or at shutdown."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, Cut | asyncio.CancelledError):
            return False
        return not str(record.msg).startswith("Cancel ")


def _quiet_uvicorn_logs() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietFilter) for f in logger.filters):
        logger.addFilter(_QuietFilter())


# ---------------------------------------------------------------------------------------------
# Small routes.


_CHAT_PATHS = frozenset({OpenAIDialect.path, AnthropicDialect.path})


class _NameHeader:
    """Adds ``x-upstream-name`` to every response (plain ASGI, touches only the start message)."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.header = (b"x-upstream-name", name.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _CHAT_PATHS:
            await self.app(scope, receive, send)  # the chat endpoint names itself, faster
            return

        async def send_named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_named)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def build_app(name: str, kind: str = "openai", answers: str | None = None) -> Starlette:
    """The fake upstream as an ASGI app; ``kind`` is ``"openai"`` or ``"anthropic"``;
    ``answers``: a labelled-answers file (``answers.load_labels``)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    _quiet_uvicorn_logs()
    state = UpstreamState(name=name, kind=kind, answers=load_labels(answers) if answers else {})
    dialect = DIALECTS[kind](name)
    chat = ChatEndpoint(state, dialect)
    created = int(time.time())

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok", "name": name, "kind": kind})

    async def models(request: Request) -> Response:
        ids = sorted(MODELS)  # what a real upstream lists: its own models, not what was asked
        if kind == "anthropic":
            data: list[dict[str, Any]] = [
                {"type": "model", "id": i, "display_name": i, "created_at": "2024-01-01T00:00:00Z"}
                for i in ids
            ]
            return _json({"data": data, "has_more": False, "first_id": ids[0], "last_id": ids[-1]})
        data = [{"id": i, "object": "model", "created": created, "owned_by": name} for i in ids]
        return _json({"object": "list", "data": data})

    async def control(request: Request) -> Response:
        raw = await request.body()
        try:
            spec = orjson.loads(raw) if raw else {}
            state.control = Control(
                fail_status=spec.get("fail_status"),
                retry_after=spec.get("retry_after"),
                hang=bool(spec.get("hang", False)),
                delay_ms=float(spec.get("delay_ms") or 0),
                count=spec.get("count"),
                fail_rate=float(spec.get("fail_rate") or 0),
            )
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
            return _json({"error": {"message": f"bad control: {exc}"}}, 400)
        return _json({"ok": True})

    async def reset(request: Request) -> Response:
        state.stats.clear()
        state.control = Control()
        state.recent.clear()
        return _json({"ok": True})

    async def stats(request: Request) -> Response:
        return _json(state.snapshot())

    async def requests(request: Request) -> Response:
        last = int(request.query_params.get("last", "10"))
        items = list(state.recent)
        return _json(items[-last:] if last > 0 else [])

    routes = [
        Route(dialect.path, chat, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/_control", control, methods=["POST"]),
        Route("/_reset", reset, methods=["POST"]),
        Route("/_stats", stats, methods=["GET"]),
        Route("/_requests", requests, methods=["GET"]),
    ]
    if kind == "openai":
        routes.append(Route("/v1/embeddings", embeddings_endpoint(state), methods=["POST"]))
    app = Starlette(routes=routes, middleware=[Middleware(_NameHeader, name=name)])
    app.state.upstream = state
    return app


def serve(name: str, kind: str, host: str, port: int, answers: str | None = None) -> None:
    """Run the fake upstream with the fastest uvicorn parts available, quietly."""
    import uvicorn

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    config = uvicorn.Config(
        build_app(name, kind, answers),
        host=host,
        port=port,
        loop=loop,
        http=http,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=1,
        backlog=4096,
    )
    _quiet_uvicorn_logs()
    uvicorn.Server(config).run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI / Anthropic upstream for tests.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="upstream")
    parser.add_argument("--kind", choices=KINDS, default="openai")
    parser.add_argument("--answers", help="a labelled-answers JSON file (see answers.py)")
    args = parser.parse_args(argv)
    serve(args.name, args.kind, args.host, args.port, args.answers)


if __name__ == "__main__":
    main()
