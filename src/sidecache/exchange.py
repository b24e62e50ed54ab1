"""One request's lifetime: what the gateway knows of it going in, and what happened to it.

``RequestContext`` holds what comes from the headers and the key. ``Exchange`` follows the
request from its first byte to its last, whichever way it ends (an answer, an error, a client
that leaves mid-stream, a server that shuts down): the path fills in its facts as they become
known, and the HTTP layer settles it exactly once, in the ``finally`` around the response
(``Pipeline.settle``). So a request can never be billed twice or escape accounting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sidecache.errors import GatewayError
from sidecache.observability.record import Outcome

if TYPE_CHECKING:
    from sidecache.governance.budget import Reservation
    from sidecache.governance.keys import KeyRecord

__all__ = ["Exchange", "RequestContext"]


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
    prompt: str | None = None
    """The last user turn, kept only when prompt logging is switched on."""
    asked_regions: frozenset[str] | None = None
    """Regions the request asked for (``x-sidecache-region``)."""
    regions: frozenset[str] | None = None
    """Regions it may be served from (key, tenant and header together); ``None``: any."""


@dataclass
class Exchange:
    """The facts of one request, filled in along the path and settled exactly once."""

    ctx: RequestContext
    model: str = ""
    """The model alias asked for (``_unknown`` for a name that is not one)."""
    endpoint: str = "chat.completions"
    """The API the client called (``chat.completions``, ``responses``, ``messages``,
    ``embeddings``): one pipeline serves them all, the accounting tells them apart."""
    outcome: Outcome = "error"
    provider: str = ""
    upstream_model: str = ""
    status: int = 200
    ttft_s: float | None = None
    latency_s: float = 0.0
    est_prompt_tokens: int = 0
    """Charged against tokens/min at admission, replaced by the real count at settlement."""
    usage: dict[str, Any] | None = None
    completion: dict[str, Any] | None = None
    """The answer as far as it got (whole, or what a cut stream had sent)."""
    saved_usage: dict[str, Any] | None = None
    saved_model: str = ""
    error_reason: str = ""
    coalesced: bool = False
    """A miss that followed another request's upstream call: it cost nothing more."""
    abandoned: bool = False
    """The client left before the answer ended."""
    reservation: Reservation | None = None
    """Budget held for this request's estimated cost until it is settled."""
    variant: str = ""
    """The A/B variant of its model alias it was assigned (empty: the alias has none)."""
    fallback: bool = False
    """Another target than its variant's answered (the variant's could not)."""
    usage_estimated: bool = False
    """``usage`` is the gateway's estimate (the upstream reported none)."""
    settled: bool = False
    followups: list[Callable[[Exchange], None]] = field(default_factory=list)
    """Work for after the client has its whole answer (side traffic: shadow calls, audits):
    started once by ``Pipeline.after``, never on the client's time."""

    def fail(self, exc: GatewayError) -> None:
        """Mark the request as failed with ``exc``, keeping the provider that failed."""
        self.outcome, self.status = "error", exc.status
        self.error_reason = exc.code or type(exc).__name__
        self.provider = self.provider or exc.provider

    def leave(self) -> None:
        """The client went away before the end (status 499, nginx's "client closed request").

        What it was (a miss, a hit) stays its outcome: a miss that went upstream is billed. A
        request that had not got that far counts as an error."""
        self.abandoned = True
        if self.status == 200:
            self.status = 499
            self.error_reason = self.error_reason or "client_closed"
