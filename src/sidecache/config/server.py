"""``[server]`` and ``[observability]``: the process, its port, its data and its figures."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from sidecache.config.base import Base, Positive


class ServerConfig(Base, frozen=True):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8080
    max_body_bytes: Positive = 1_048_576
    admin_key: str = ""
    data_dir: str = ".sidecache"
    log_prompts: bool = False
    allow_anonymous: bool | None = None
    """None: anonymous requests are allowed only when bound to loopback and no key was ever
    created (revoking the last key does not open the gateway)."""
    body_timeout_seconds: Annotated[float, Meta(gt=0)] = 30.0
    """Longest time to receive a request body once its headers arrived; then 408."""
    max_connections: Positive = 1024
    """Requests handled at once; past it a request gets 503 at once (slow or stuck clients
    cannot hold every file descriptor)."""


class ObservabilityConfig(Base, frozen=True):
    """The in-memory statistics behind ``/stats`` and the dashboard, and the access log."""

    access_log: bool = True
    stats_bucket_seconds: Annotated[int, Meta(ge=1, le=3600)] = 10
    stats_window_seconds: Annotated[int, Meta(ge=60, le=86_400)] = 3600
    latency_samples: Annotated[int, Meta(ge=16, le=100_000)] = 1024
    """Recent latencies kept per provider and outcome for the p50/p95 figures."""
    max_tags: Annotated[int, Meta(ge=0)] = 200
    """Distinct ``key=value`` tags tracked in ``/stats``; later ones count under ``_other``."""
