"""The one record every finished request produces, fed to metrics, stats and the access log."""

from __future__ import annotations

from typing import Literal

import msgspec

Outcome = Literal["hit-exact", "hit-semantic", "miss", "bypass", "error"]
OUTCOMES: tuple[Outcome, ...] = ("hit-exact", "hit-semantic", "miss", "bypass", "error")
HITS: frozenset[str] = frozenset({"hit-exact", "hit-semantic"})


class RequestRecord(msgspec.Struct, kw_only=True):
    """What happened to one request, filled in by the gateway when the response is done.

    Token and dollar fields separate what was *spent* upstream by this request from what a
    cache hit *saved*: on a hit ``prompt_tokens``/``completion_tokens``/``cost_usd`` are 0 and
    ``saved_tokens``/``saved_usd`` hold what the stored answer originally cost; on a miss or
    bypass it is the other way round.
    """

    request_id: str
    outcome: Outcome
    tenant: str = ""
    model: str = ""
    """The model alias the client asked for."""
    endpoint: str = "chat.completions"
    """The API the client called: ``chat.completions``, ``responses``, ``messages``,
    ``embeddings``."""
    provider: str = ""
    """The provider that served the request; empty for cache hits and requests that never left."""
    latency_s: float = 0.0
    ttft_s: float | None = None
    """Time to first token (first content byte) for streamed answers."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    saved_tokens: int = 0
    saved_usd: float = 0.0
    usage_estimated: bool = False
    """The upstream reported no usage, so the token counts are estimates."""
    tags: dict[str, str] = {}
    user: str | None = None
    status: int = 200
    error_reason: str | None = None
    """A short machine-readable reason when ``outcome == "error"`` (e.g. ``upstream_timeout``)."""
    variant: str = ""
    """The A/B variant of the model alias, when it has variants."""
    fallback: bool = False
    """A target other than the variant's answered: the variant's own target did not."""
