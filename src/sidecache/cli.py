"""The ``sidecache`` command: ``serve`` runs the gateway; ``keys`` manages virtual keys."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from sidecache import config as config_mod
from sidecache.errors import ConfigError


def load_config(path: str | None) -> config_mod.Config:
    path = path or os.environ.get("SIDECACHE_CONFIG")
    return config_mod.load(path) if path else config_mod.from_env()


def _serve(args: argparse.Namespace) -> int:
    import importlib.util

    import uvicorn

    from sidecache.app import build_app

    cfg = load_config(args.config)
    host = args.host or cfg.server.host
    port = args.port if args.port is not None else cfg.server.port
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()), format="%(message)s", stream=sys.stderr
    )
    app = build_app(cfg)
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidecache", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", help="TOML config file (default: $SIDECACHE_CONFIG or env)")
    serve.add_argument("--host", help="bind address (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: server.port, 8080)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"sidecache: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
