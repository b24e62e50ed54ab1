"""The ``sidecache`` command: ``serve`` runs the gateway; ``keys`` manages virtual keys (in
``state.db``, or in Redis with ``governance.store = "redis"``)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
import sys
from collections.abc import Sequence

import msgspec

from sidecache import config as config_mod
from sidecache.errors import ConfigError, GatewayError


def load_config(path: str | None) -> config_mod.Config:
    """The config file (``--config``, else ``$SIDECACHE_CONFIG``) or the environment alone,
    with the ``SIDECACHE_*`` server variables applied on top (see ``config.server_from_env``)."""
    path = path or os.environ.get("SIDECACHE_CONFIG")
    cfg = config_mod.load(path) if path else config_mod.from_env()
    return config_mod.server_from_env(cfg)


def _bind(host: str, port: int) -> socket.socket:
    """Open the listening socket before anything slow is imported or loaded: the port is open
    within a fraction of a second, and a port in use fails at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"failed: {exc.strerror}"
        raise ConfigError(f"cannot listen on {host}:{port}: the address {reason}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


_QUIET = ("httpx", "httpcore", "faiss", "faiss.loader", "onnxruntime", "urllib3", "filelock")
"""Libraries whose info lines (one per upstream call, CPU feature banners) are noise here."""


def _check_embedder_extra(cfg: config_mod.Config) -> None:
    """Refuse, before the server starts, an embedder configuration that needs the torch extra
    when it is not installed (the message names the extra, instead of a failed startup)."""
    if not (cfg.cache.enabled and cfg.cache.semantic):
        return
    from sidecache.cache.embedder import needs_torch, require_torch_extra

    reason = needs_torch(cfg.cache.embedder)
    if reason is not None:
        require_torch_extra(reason)


def _serve(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    _check_embedder_extra(cfg)
    host = args.host or cfg.server.host
    port = args.port if args.port is not None else cfg.server.port
    sock = _bind(host, port)
    port = int(sock.getsockname()[1])
    cfg = msgspec.structs.replace(
        cfg, server=msgspec.structs.replace(cfg.server, host=host, port=port)
    )
    if cfg.governance.store == "redis":  # keys live there: no point starting without it
        from sidecache.fleet.connection import connect

        try:
            connect(cfg.redis).close()
        except GatewayError as exc:
            sock.close()
            raise ConfigError(f'governance.store = "redis": {exc.message}') from exc
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()), format="%(message)s", stream=sys.stderr
    )
    if args.log_level != "debug":
        for name in _QUIET:
            logging.getLogger(name).setLevel(logging.WARNING)

    import importlib.util

    import uvicorn

    from sidecache.app import build_app
    from sidecache.observability.logs import json_lines_handler

    access = logging.getLogger("sidecache.access")
    access.setLevel(logging.INFO)
    access.propagate = False
    access.addHandler(json_lines_handler())
    app = build_app(cfg)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
            http="httptools" if importlib.util.find_spec("httptools") else "h11",
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    )
    server.run(sockets=[sock])
    return 1 if getattr(app.state, "fatal", None) is not None else 0


def _names(value: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; ``None`` when the option was not given."""
    return [m.strip() for m in value.split(",") if m.strip()] if value else None


def _keys(args: argparse.Namespace) -> int:
    from sidecache.governance.backends import open_keys

    cfg = load_config(args.config)
    try:
        store = open_keys(cfg)
    except GatewayError as exc:
        print(f"sidecache: {exc.message}", file=sys.stderr)
        return 1
    try:
        if args.keys_command == "create":
            models = _names(args.models)
            regions = _names(args.region)
            if args.plan and args.plan not in cfg.plans:
                known = ", ".join(sorted(cfg.plans)) or "none defined"
                raise ConfigError(f"plan {args.plan!r} is not defined under [plans] ({known})")
            raw, rec = store.create(
                args.tenant,
                models=models,
                rpm=args.rpm,
                tpm=args.tpm,
                budget_usd=args.budget_usd,
                budget_period=args.budget_period,
                regions=regions,
                plan=args.plan,
            )
            print(raw)
            print(
                f"created {rec.id} for tenant {rec.tenant!r}; the key is shown once, store it now",
                file=sys.stderr,
            )
        elif args.keys_command == "list":
            rows = store.list(include_revoked=args.all)
            print(
                f"{'id':<22}{'prefix':<16}{'tenant':<16}{'models':<20}{'rpm':>6}{'tpm':>8}"
                f"{'budget':>12}  {'region':<10}{'plan':<12}status"
            )
            for r in rows:
                budget = f"${r.budget_usd:g}/{r.budget_period}" if r.budget_usd is not None else "-"
                print(
                    f"{r.id:<22}{r.prefix:<16}{r.tenant:<16}{','.join(r.models or ['*']):<20}"
                    f"{r.rpm or '-':>6}{r.tpm or '-':>8}{budget:>12}  "
                    f"{','.join(r.regions or ['*']):<10}{r.plan or '-':<12}"
                    f"{'revoked' if r.revoked else 'active'}"
                )
        elif args.keys_command == "rotate":
            raw, rec = store.rotate(args.key_id, args.grace_seconds)
            print(raw)
            print(
                f"rotated {rec.id}: the new key is shown once, store it now; the old one works"
                f" for {args.grace_seconds:g} more seconds",
                file=sys.stderr,
            )
        else:
            rec = store.revoke(args.key)
            print(f"revoked {rec.id} ({rec.prefix}..., tenant {rec.tenant!r})")
    except GatewayError as exc:
        print(f"sidecache: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
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

    keys = sub.add_parser("keys", help="manage virtual keys (stored hashed)")
    keys.add_argument(
        "--config", help="TOML config file: server.data_dir, or governance.store and [redis]"
    )
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    create = ksub.add_parser("create", help="create a key and print it once")
    create.add_argument("--tenant", required=True)
    create.add_argument("--models", help="comma-separated model aliases (default: all)")
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--tpm", type=int, help="tokens per minute")
    create.add_argument("--budget-usd", type=float, help="spend limit in USD per period")
    create.add_argument("--budget-period", choices=["day", "month"], help="default: month")
    create.add_argument(
        "--region", help="comma-separated regions; only targets there serve this key"
    )
    create.add_argument("--plan", help="a [plans.NAME] whose limits apply where the key sets none")
    lst = ksub.add_parser("list", help="list keys (never the keys themselves)")
    lst.add_argument("--all", action="store_true", help="include revoked keys")
    revoke = ksub.add_parser("revoke", help="revoke a key: the full key, its id or its prefix")
    revoke.add_argument("key", help="the key itself (sk-sc-...), its id (key_...) or its prefix")
    rotate = ksub.add_parser("rotate", help="give a key a new secret; the old one works a while")
    rotate.add_argument("key_id", help="the key's id (key_...)")
    rotate.add_argument(
        "--grace-seconds",
        type=float,
        default=3600.0,
        help="how long the old secret keeps working (default 3600)",
    )
    for p in (create, lst, revoke, rotate):
        p.add_argument("--config", help=argparse.SUPPRESS, default=argparse.SUPPRESS)
    keys.set_defaults(func=_keys)
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
