"""The governance checks of one request, in the order the request meets them.

``authenticate`` (virtual key -> tenant, 401) -> ``admit`` (model allowed 403, rate limits 429)
-> cache lookup -> ``reserve`` (a miss holds its estimated cost of the budget, 429
budget_exceeded; hits skip it unless configured) -> upstream -> ``settle`` (tokens and dollars
spent or saved, real usage replaces the estimates, the reservation becomes the real spend,
metrics/stats/log updated). ``settle`` runs exactly once per request, whichever way it ended.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Sequence
from typing import Any

from sidecache.config import Config
from sidecache.errors import AuthenticationError, PermissionDenied
from sidecache.exchange import Exchange
from sidecache.governance.alerts import BudgetAlerts
from sidecache.governance.backends import Governance, open_governance
from sidecache.governance.keys import KeyRecord
from sidecache.governance.plans import with_plan
from sidecache.governance.pricing import (
    CompletionEstimates,
    Pricing,
    estimate_prompt_tokens,
    estimate_tokens,
)
from sidecache.observability.record import HITS, RequestRecord
from sidecache.observability.recorder import Recorder

log = logging.getLogger("sidecache")


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class Gate:
    """Holds keys, limits, budgets and prices; the pipeline calls it at fixed points."""

    def __init__(
        self,
        cfg: Config,
        recorder: Recorder,
        *,
        loopback: bool,
        governance: Governance | None = None,
    ) -> None:
        """``governance``: keys, limits and spend; default: opened as ``governance.store``
        says (blocking: a shared store connects here)."""
        self.cfg = cfg
        self.recorder = recorder
        self.state = governance if governance is not None else open_governance(cfg)
        self.keys = self.state.keys
        self.limiter = self.state.limits
        self.budgets = self.state.spend
        self.alerts = BudgetAlerts(
            cfg, self.budgets, cfg.server.data_dir, on_status=recorder.routing.alert
        )
        self.pricing = Pricing(cfg.pricing)
        self.completions = CompletionEstimates(cfg.limits.completion_estimate_tokens)
        self.admin_key = cfg.server.admin_key or os.environ.get("SIDECACHE_ADMIN_KEY", "")
        self.loopback = loopback

    async def start(self) -> None:
        await self.state.start()
        await self.alerts.start()
        host = self.cfg.server.host
        if self.cfg.server.allow_anonymous:
            if not self.loopback:
                log.warning(
                    "!! allow_anonymous = true on %s: ANYONE who can reach this address can"
                    " use your providers' keys and budget. Create keys with `sidecache keys"
                    " create --tenant NAME` and remove allow_anonymous.",
                    host,
                )
        elif not self.keys.ever_created():
            if self.loopback:
                log.warning(
                    "no virtual keys exist: accepting anonymous requests on loopback only."
                    " Create keys with `sidecache keys create --tenant NAME`."
                )
            else:
                log.warning(
                    "!! bound to %s with no virtual keys: EVERY request will be refused (401)"
                    " until you create one with `sidecache keys create --tenant NAME` (the"
                    " running gateway picks it up within a second), or set"
                    " server.allow_anonymous = true if the network is private.",
                    host,
                )

    async def aclose(self) -> None:
        await self.alerts.aclose()
        await self.state.aclose()

    def anonymous_allowed(self) -> bool:
        """Explicit config wins; by default only a loopback gateway that never had a key runs
        open (a revoked last key keeps it closed)."""
        allow = self.cfg.server.allow_anonymous
        if allow is not None:
            return allow
        return self.loopback and not self.keys.ever_created()

    def authenticate(self, authorization: str | None) -> KeyRecord | None:
        """The key's record; None for an allowed anonymous request; else 401."""
        raw = bearer(authorization)
        if raw:
            record = self.keys.lookup(raw)
            if record is not None:
                return with_plan(record, self.cfg)
            if self.keys.known(raw) or not self.anonymous_allowed():
                raise AuthenticationError("Incorrect API key provided (unknown or revoked)")
            return None
        if self.anonymous_allowed():
            return None
        raise AuthenticationError(
            "You didn't provide an API key. Send it as `Authorization: Bearer sk-sc-...`"
        )

    def is_admin(self, authorization: str | None, query_key: str | None = None) -> bool:
        given = bearer(authorization) or query_key or ""
        return bool(self.admin_key) and hmac.compare_digest(given, self.admin_key)

    async def admit(
        self, ex: Exchange, alias: str, body: dict[str, Any], prompt_tokens: int | None = None
    ) -> None:
        """Check model access and rate limits, charging the prompt's estimated tokens (those of
        a chat body's messages and tools, unless ``prompt_tokens`` is given)."""
        if prompt_tokens is None:
            prompt_tokens = estimate_prompt_tokens(body.get("messages") or (), body.get("tools"))
        ex.est_prompt_tokens = prompt_tokens
        key = ex.ctx.key
        if key is None:
            return
        if not key.allows(alias):
            raise PermissionDenied(
                f"this key may not use the model `{alias}`", param="model", code="model_not_allowed"
            )
        if key.rpm or key.tpm:
            await self.limiter.admit(key, ex.est_prompt_tokens)

    async def check_budget(self, ex: Exchange) -> None:
        """For hits when ``limits.serve_hits_over_budget`` is off: refuse an exhausted key."""
        if ex.ctx.key is not None:
            await self.budgets.check(ex.ctx.key)

    async def reserve(
        self,
        ex: Exchange,
        body: dict[str, Any],
        upstream_models: Sequence[str],
        completion_tokens: int | None = None,
    ) -> None:
        """Admit a miss against the key's and tenant's budgets, holding its estimated cost
        (prompt + expected completion, at the dearest of the targets that may serve it;
        ``completion_tokens`` when the caller knows it, e.g. 0 for embeddings)."""
        key = ex.ctx.key
        if key is None:
            return
        completion = completion_tokens
        if completion is None:
            completion = self.completions.estimate(ex.model, body)
        usd = max(
            (self.pricing.cost(m, ex.est_prompt_tokens, completion) for m in upstream_models),
            default=0.0,
        )
        ex.reservation = await self.budgets.reserve(key, usd)

    def settle(self, ex: Exchange) -> RequestRecord:
        """Turn the facts of a finished request into money and counters, and record them."""
        ctx = ex.ctx
        rec = RequestRecord(
            request_id=ctx.request_id,
            outcome=ex.outcome,
            tenant=ctx.tenant,
            model=ex.model,
            endpoint=ex.endpoint,
            provider=ex.provider,
            latency_s=ex.latency_s,
            ttft_s=ex.ttft_s,
            tags=ctx.tags,
            user=ctx.user,
            status=ex.status,
            error_reason=ex.error_reason or None,
            variant=ex.variant,
            fallback=ex.fallback,
        )
        hit = ex.outcome in HITS
        if hit and ex.saved_usage:
            p, c = _tokens(ex.saved_usage)
            rec.saved_tokens = p + c
            rec.saved_usd = self.pricing.cost(ex.saved_model, p, c)
        elif not hit and (ex.usage or ex.completion):  # it reached an upstream: it cost money
            if ex.usage:
                rec.prompt_tokens, rec.completion_tokens = _tokens(ex.usage)
                if not ex.abandoned and ex.outcome != "error":
                    self.completions.observe(ex.model, rec.completion_tokens)
            else:
                rec.usage_estimated = True
                rec.prompt_tokens = ex.est_prompt_tokens
                rec.completion_tokens = estimate_tokens(_text(ex.completion))
            rec.usage_estimated = rec.usage_estimated or ex.usage_estimated
            model = ex.upstream_model or (ex.completion or {}).get("model", "")
            rec.cost_usd = self.pricing.cost(model, rec.prompt_tokens, rec.completion_tokens)
            if ex.saved_usage:  # part of the request came from the cache (an embeddings batch)
                p, c = _tokens(ex.saved_usage)
                rec.saved_tokens = p + c
                rec.saved_usd = self.pricing.cost(ex.saved_model or model, p, c)
            if ex.coalesced:  # another request's upstream call answered this one: it was free
                rec.saved_tokens = rec.prompt_tokens + rec.completion_tokens
                rec.saved_usd = rec.cost_usd
                rec.prompt_tokens = rec.completion_tokens = 0
                rec.cost_usd = 0.0
                hit = True
        key = ctx.key
        if key is not None:
            used = rec.prompt_tokens + rec.completion_tokens
            if key.tpm:
                self.limiter.settle(key, ex.est_prompt_tokens, used, hit=hit)
            self.budgets.settle(ex.reservation, key.id, key.tenant, rec.cost_usd)
            ex.reservation = None
            if rec.cost_usd > 0:
                try:
                    self.alerts.check(key)
                except Exception:  # an alert must never cost a request its accounting
                    log.exception("budget alert check failed")
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
