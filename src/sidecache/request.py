"""What travels with one request through the pipeline: its context in, its outcome out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sidecache.governance.keys import KeyRecord


@dataclass
class RequestContext:
    """What the gateway knows about a request beyond its body (from headers and auth)."""

    request_id: str
    tenant: str = "anonymous"
    key: KeyRecord | None = None
    started: float = field(default_factory=time.perf_counter)
    namespace: str | None = None
    cache_control: str | None = None
    threshold: float | None = None
    ttl: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    est_tokens: int = 0
    prompt: str | None = None
    """The last user turn, kept only when prompt logging is switched on."""


@dataclass
class Outcome:
    """The facts of one finished request, handed to accounting (money, metrics, stats, logs)."""

    ctx: RequestContext
    model: str
    outcome: str  # hit-exact | hit-semantic | miss | bypass | error
    provider: str = ""
    upstream_model: str = ""
    status: int = 200
    ttft_s: float | None = None
    latency_s: float = 0.0
    usage: dict[str, Any] | None = None
    completion: dict[str, Any] | None = None
    saved_usage: dict[str, Any] | None = None
    saved_model: str = ""
    error_reason: str = ""
    coalesced: bool = False
    """A miss that followed another request's upstream call: it cost nothing more."""
