"""The governance checks of one request, in the order the request meets them.

``authenticate`` (virtual key -> tenant, 401) -> ``admit`` (model allowed 403, rate limits 429)
-> cache lookup -> ``check_budget`` (429 budget_exceeded, skipped for hits if configured) ->
upstream -> ``settle`` (tokens and dollars spent or saved, real usage replaces the estimate,
spend recorded against budgets, metrics/stats/log updated).
"""

from __future__ import annotations

import hmac
import logging
import os
from typing import Any

from sidecache.config import Config
from sidecache.errors import AuthenticationError, PermissionDenied
from sidecache.governance.budget import BudgetTracker
from sidecache.governance.keys import KeyRecord, KeyStore
from sidecache.governance.pricing import Pricing, estimate_prompt_tokens, estimate_tokens
from sidecache.governance.ratelimit import RateLimiter
from sidecache.observability.record import HITS, RequestRecord
from sidecache.observability.recorder import Recorder
from sidecache.request import Outcome

log = logging.getLogger("sidecache")


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class Gate:
    """Holds keys, limits, budgets and prices; the pipeline calls it at fixed points."""

    def __init__(self, cfg: Config, recorder: Recorder, *, loopback: bool) -> None:
        self.cfg = cfg
        self.recorder = recorder
        self.keys = KeyStore(cfg.server.data_dir)
        self.limiter = RateLimiter(cfg.limits)
        self.budgets = BudgetTracker(cfg.server.data_dir, cfg.limits)
        self.pricing = Pricing(cfg.pricing)
        self.admin_key = cfg.server.admin_key or os.environ.get("SIDECACHE_ADMIN_KEY", "")
        self.loopback = loopback

    async def start(self) -> None:
        await self.budgets.start()
        if self.anonymous_allowed():
            log.warning(
                "no virtual keys exist: accepting anonymous requests (bound to loopback only)."
                " Create keys with `sidecache keys create --tenant NAME`."
            )

    async def aclose(self) -> None:
        await self.budgets.aclose()
        self.keys.close()

    def anonymous_allowed(self) -> bool:
        """Explicit config wins; by default only a loopback gateway with no keys runs open."""
        allow = self.cfg.server.allow_anonymous
        if allow is not None:
            return allow
        return self.loopback and self.keys.count_active() == 0

    def authenticate(self, authorization: str | None) -> KeyRecord | None:
        """The key's record; None for an allowed anonymous request; else 401."""
        raw = bearer(authorization)
        if raw:
            record = self.keys.lookup(raw)
            if record is not None:
                return record
            if not self.anonymous_allowed():
                raise AuthenticationError("Incorrect API key provided")
            return None
        if self.anonymous_allowed():
            return None
        raise AuthenticationError(
            "You didn't provide an API key. Send it as `Authorization: Bearer sk-sc-...`"
        )

    def is_admin(self, authorization: str | None, query_key: str | None = None) -> bool:
        given = bearer(authorization) or query_key or ""
        return bool(self.admin_key) and hmac.compare_digest(given, self.admin_key)

    def admit(self, key: KeyRecord | None, alias: str, body: dict[str, Any]) -> int:
        """Check model access and rate limits; returns the prompt token estimate charged."""
        est = estimate_prompt_tokens(body.get("messages") or (), body.get("tools"))
        if key is None:
            return est
        if not key.allows(alias):
            raise PermissionDenied(
                f"this key may not use the model `{alias}`", param="model", code="model_not_allowed"
            )
        self.limiter.check_request(key.id, key.rpm, key.tpm, est)
        return est

    def check_budget(self, key: KeyRecord | None) -> None:
        if key is not None:
            self.budgets.check(key)

    def settle(self, o: Outcome) -> RequestRecord:
        """Turn the facts of a finished request into money and counters, and record them."""
        ctx = o.ctx
        rec = RequestRecord(
            request_id=ctx.request_id,
            outcome=o.outcome,  # type: ignore[arg-type]
            tenant=ctx.tenant,
            model=o.model,
            provider=o.provider,
            latency_s=o.latency_s,
            ttft_s=o.ttft_s,
            tags=ctx.tags,
            user=ctx.user,
            status=o.status,
            error_reason=o.error_reason or None,
        )
        hit = o.outcome in HITS
        if hit and o.saved_usage:
            p, c = _tokens(o.saved_usage)
            rec.saved_tokens = p + c
            rec.saved_usd = self.pricing.cost(o.saved_model, p, c)
        elif o.outcome in ("miss", "bypass"):
            if o.usage:
                rec.prompt_tokens, rec.completion_tokens = _tokens(o.usage)
            else:
                rec.usage_estimated = True
                rec.prompt_tokens = ctx.est_tokens
                rec.completion_tokens = estimate_tokens(_text(o.completion))
            model = o.upstream_model or (o.completion or {}).get("model", "")
            rec.cost_usd = self.pricing.cost(model, rec.prompt_tokens, rec.completion_tokens)
            if o.coalesced:  # another request's upstream call answered this one: it was free
                rec.saved_tokens = rec.prompt_tokens + rec.completion_tokens
                rec.saved_usd = rec.cost_usd
                rec.prompt_tokens = rec.completion_tokens = 0
                rec.cost_usd = 0.0
                hit = True
        key = ctx.key
        if key is not None:
            used = rec.prompt_tokens + rec.completion_tokens
            self.limiter.settle(key.id, key.tpm, ctx.est_tokens, used, hit=hit)
            self.budgets.record(key.id, key.tenant, rec.cost_usd)
        self.recorder.record(rec, ctx.prompt)
        return rec


def _tokens(usage: dict[str, Any]) -> tuple[int, int]:
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def _text(completion: dict[str, Any] | None) -> str:
    if not completion:
        return ""
    return "".join(
        (c.get("message") or {}).get("content") or "" for c in completion.get("choices") or ()
    )
