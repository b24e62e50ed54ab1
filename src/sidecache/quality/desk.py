"""``QualityDesk``: the one object the request path, the API and ``/stats`` talk to.

On the request path it only decides and remembers (a few dict operations): the threshold an
alias serves at, whether this lookup is sampled for an audit, which hit a request received.
Everything that costs time (upstream side calls, embeddings, the journal) is queued as a
follow-up on the request's ``Exchange`` and started by ``Pipeline.after`` once the client has
its whole answer, on the bounded ``SideLane``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sidecache.config import Config, Shadow
from sidecache.errors import ServiceUnavailable
from sidecache.exchange import Exchange
from sidecache.governance.pricing import Pricing
from sidecache.quality.audits import AuditBook, today
from sidecache.quality.compare import AnswerComparer
from sidecache.quality.feedback import Caller, HitLog, HitRecord, Neighbourhoods, Probe
from sidecache.quality.journal import Journal
from sidecache.quality.lane import SideAnswer, SideLane, answer_text, ask, cost_of, side_body
from sidecache.quality.shadow import ShadowBook
from sidecache.quality.thresholds import HISTORY, AliasThreshold, policy_of

if TYPE_CHECKING:
    from sidecache.cache.policy import Decision
    from sidecache.cache.semantic import Hit, SemanticCache, Verify
    from sidecache.routing.router import Route, Router

__all__ = ["QualityDesk"]

log = logging.getLogger("sidecache.quality")


class QualityDesk:
    """Shadow traffic, hit audits, feedback and adaptive thresholds, for every alias."""

    def __init__(
        self,
        cfg: Config,
        router: Router,
        pricing: Pricing,
        data_dir: Path,
        *,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.cfg = cfg
        self.router = router
        self.pricing = pricing
        self.data_dir = data_dir
        self.random = rng
        self._exec = ThreadPoolExecutor(1, thread_name_prefix="sidecache-side")
        self.lane = SideLane(cfg.side_traffic.max_in_flight, cfg.side_traffic.timeout_seconds)
        self.comparer = AnswerComparer(self._exec)
        self.cache: SemanticCache | None = None
        self.journal: Journal | None = None
        self.hits = HitLog()
        self.hoods = Neighbourhoods()
        self.shadow = ShadowBook()
        self.audits = AuditBook()
        self._refreshing: dict[str, bool] = {}
        """Aliases whose threshold is being re-estimated -> whether new data came meanwhile."""
        self._tasks: set[asyncio.Task[None]] = set()
        self.verdicts: Counter[tuple[str, str, str]] = Counter()
        """(alias, tenant, verdict) -> feedback count."""
        self.thresholds = {
            alias: AliasThreshold(alias, policy_of(cfg, spec)) for alias, spec in cfg.models.items()
        }
        for alias, spec in cfg.models.items():
            if spec.shadow is not None:
                self.shadow.alias(alias, spec.shadow.target, spec.shadow.rate)

    # -- lifecycle ---------------------------------------------------------------------------

    async def _blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._exec, fn, *args)

    async def start(self) -> None:
        """Open the journal and resume: observations, thresholds, closed neighbourhoods, and
        the day's side spend."""
        journal = self.journal = await self._blocking(Journal, self.data_dir)
        observations = await self._blocking(journal.observations)
        history = await self._blocking(journal.thresholds, HISTORY)
        for alias, state in self.thresholds.items():
            state.history.extend(history.get(alias, []))
            if state.history and state.policy.adaptive:
                state.effective = state.history[-1]["threshold"]
            for t, s, wrong, source in observations.get(alias, []):
                state.observe(s, wrong, source, t)
            change = state.refresh()
            if change is not None:
                change["reason"] = "at start, from the journal: " + change["reason"]
                self._write(journal.threshold, alias, change)
        for scope, key, vector in await self._blocking(journal.blocks):
            self.hoods.close(scope, key, np.frombuffer(vector, dtype=np.float32))
        self.audits.load(today(), await self._blocking(journal.spent, today()))

    def use_cache(self, cache: SemanticCache) -> None:
        """The cache finished loading: its embedder compares answers from now on."""
        self.cache = cache
        embedder = cache.embedder
        self.comparer.encode = embedder.encode if embedder is not None else None

    async def wait(self) -> None:
        """Until the side calls started so far, their re-estimates and journal writes are done."""
        await self.lane.wait()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._blocking(lambda: None)

    async def aclose(self) -> None:
        await self.lane.aclose()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.journal is not None:
            await self._blocking(self.journal.close)
        self._exec.shutdown(wait=True)

    def _write(self, fn: Callable[..., Any], *args: Any) -> None:
        """A journal write on the side thread, not waited for (a failure is logged)."""
        if self.journal is None:
            return
        future: Future[Any] = self._exec.submit(fn, *args)
        future.add_done_callback(_log_failure)

    # -- the request path --------------------------------------------------------------------

    async def lookup(
        self,
        ex: Exchange,
        decision: Decision,
        route: Route,
        body: dict[str, Any],
        threshold: float,
        verify: Verify | None,
        *,
        fixed: bool,
    ) -> Hit | None:
        """The cache lookup of one request, with the alias's effective threshold, closed
        neighbourhoods, and (for a sampled share) an audit or a near-miss comparison queued
        for after the answer. ``fixed``: the request set its own threshold (a header)."""
        assert self.cache is not None
        state = self.thresholds.get(route.alias)
        serve_at = threshold if fixed or state is None else state.effective
        floor = serve_at
        sampled = False
        if state is not None and state.policy.audit_rate > 0:
            sampled = self.random() < state.policy.audit_rate
            if sampled and not fixed:
                floor = min(serve_at, state.policy.floor)
        hood = self.hoods if self.hoods.any_in(decision.scope) else None
        check: Verify | None = verify
        if hood is not None or floor < serve_at:
            check = Probe(decision.scope, verify, serve_at, hood)
        hit = await self.cache.lookup(decision, threshold=floor, verify=check)
        if hit is None:
            return None
        if hit.kind == "semantic" and hit.similarity < serve_at:
            assert state is not None
            ex.followups.append(functools.partial(self._near_miss, state, hit))
            return None
        ctx = ex.ctx
        self.hits.remember(
            HitRecord(
                request_id=ctx.request_id,
                key_id=ctx.key.id if ctx.key is not None else None,
                tenant=ctx.tenant,
                alias=route.alias,
                entry_id=hit.entry.id,
                kind=hit.kind,
                similarity=hit.similarity,
                prompt=decision.key_text,
                scope=decision.scope,
                entry_key=hit.entry.key_text,
                t=time.time(),
            )
        )
        if hit.kind == "semantic" and state is not None:
            state.served.append(hit.similarity)
            if sampled:
                audit = functools.partial(self._audit, state, route, hit, body, decision.key_text)
                ex.followups.append(audit)
        return hit

    def on_upstream(self, ex: Exchange, route: Route, body: dict[str, Any]) -> None:
        """A request is going upstream: sample it for the alias's shadow target, if any."""
        spec = route.spec
        if spec is None or spec.shadow is None or self.random() >= spec.shadow.rate:
            return
        ex.followups.append(functools.partial(self._mirror, route.alias, spec.shadow, body))

    # -- follow-ups: run once the client has its answer --------------------------------------

    def _near_miss(self, state: AliasThreshold, hit: Hit, ex: Exchange) -> None:
        fresh = answer_text(ex.completion)
        if ex.outcome != "miss" or ex.status != 200 or ex.abandoned or not fresh:
            return
        stored = answer_text(hit.response())

        async def work() -> None:
            agreement = await self.comparer.compare(stored, fresh, state.policy.audit_agree)
            counts = self.audits.alias(state.alias)
            counts.near_misses += 1
            counts.near_misses_wrong += int(not agreement.agree)
            wrong = not agreement.agree
            self._observe(state, hit.similarity, wrong, "near-miss", ex.ctx.request_id)

        self.lane.submit("compare", state.alias, work)

    def _audit(
        self,
        state: AliasThreshold,
        route: Route,
        hit: Hit,
        body: dict[str, Any],
        prompt: str,
        ex: Exchange,
    ) -> None:
        alias, policy = state.alias, state.policy
        entry = hit.entry
        tokens = ex.est_prompt_tokens
        estimate = max(
            (
                self.pricing.cost(t.upstream_model, tokens, entry.completion_tokens)
                for t in route.targets
            ),
            default=0.0,
        )
        if not self.lane.has_room():
            self.lane.dropped[("audit", alias)] += 1
            return
        if not self.audits.reserve(alias, estimate, policy.audit_budget_usd):
            return
        served = answer_text(hit.response())
        ctx = ex.ctx

        async def call() -> tuple[dict[str, Any], str]:
            completion, target = await self.router.complete(route, side_body(body))
            return completion, target.upstream_model

        async def work() -> None:
            try:
                answer = await ask(call, self.pricing, tokens)
            finally:
                self.audits.release(alias, estimate)
            self._spend("audit", alias, answer)
            counts = self.audits.alias(alias)
            if answer.error or not answer.text:
                counts.failed += 1
                return
            agreement = await self.comparer.compare(served, answer.text, policy.audit_agree)
            counts.audited += 1
            self._observe(state, hit.similarity, not agreement.agree, "audit", ctx.request_id)
            if agreement.agree:
                return
            counts.disagreed += 1
            record = {
                "t": time.time(),
                "alias": alias,
                "tenant": ctx.tenant,
                "request_id": ctx.request_id,
                "entry_id": entry.id,
                "kind": hit.kind,
                "similarity": hit.similarity,
                "prompt": prompt,
                "cached_prompt": entry.key_text,
                "cached_answer": served,
                "fresh_answer": answer.text,
                "cosine": agreement.cosine,
                "contradictions": ",".join(agreement.contradictions),
            }
            if self.journal is not None:
                await self._blocking(self.journal.audit, record)

        if not self.lane.submit("audit", alias, work):
            self.audits.release(alias, estimate)

    def _mirror(self, alias: str, shadow: Shadow, body: dict[str, Any], ex: Exchange) -> None:
        book = self.shadow.alias(alias, shadow.target, shadow.rate)
        if ex.abandoned or ex.coalesced:
            book.skipped += 1
            return
        provider_name, _, model = shadow.target.partition("/")
        provider = self.router.providers[provider_name]
        primary_error = ex.outcome == "error"
        completion = ex.completion or {}
        if ex.usage:
            completion = {**completion, "usage": ex.usage}
        primary_cost = cost_of(self.pricing, completion, ex.upstream_model, ex.est_prompt_tokens)
        primary = (ex.latency_s, primary_cost if ex.completion else 0.0, primary_error)
        primary_text = answer_text(ex.completion)
        agree_at = self.thresholds[alias].policy.audit_agree

        async def call() -> tuple[dict[str, Any], str]:
            return await provider.complete({**side_body(body), "model": model}), model

        async def work() -> None:
            answer = await ask(call, self.pricing, ex.est_prompt_tokens)
            self._spend("shadow", alias, answer)
            book.primary.add(*primary)
            book.shadow.add(answer.latency_s, answer.cost_usd, bool(answer.error))
            if not primary_error and not answer.error and primary_text:
                agreement = await self.comparer.compare(primary_text, answer.text, agree_at)
                self.shadow.compared(book, agreement.agree, agreement.cosine)

        self.lane.submit("shadow", alias, work)

    def _spend(self, kind: str, alias: str, answer: SideAnswer) -> None:
        if answer.cost_usd > 0:
            day = self.audits.add(kind, alias, answer.cost_usd)
            if self.journal is not None:
                self._write(self.journal.spend, day, kind, alias, answer.cost_usd)

    def _observe(
        self, state: AliasThreshold, similarity: float, wrong: bool, source: str, request_id: str
    ) -> None:
        state.observe(similarity, wrong, source)
        if self.journal is not None:
            t = state.observations[-1][0]
            args = (state.alias, t, similarity, wrong, source, request_id)
            self._write(self.journal.observe, *args)
        self._refresh(state)

    def _refresh(self, state: AliasThreshold) -> None:
        """Re-estimate the alias's threshold on the side thread (a few milliseconds of numpy
        that the event loop must not pay); observations that arrive meanwhile are taken by one
        more pass, never by a pass per observation."""
        if state.alias in self._refreshing:
            self._refreshing[state.alias] = True  # stale: run again when this pass ends
            return
        self._refreshing[state.alias] = False
        task = asyncio.get_running_loop().create_task(self._refresh_now(state))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh_now(self, state: AliasThreshold) -> None:
        try:
            while True:
                self._refreshing[state.alias] = False
                estimate = await self._blocking(state.estimate_from, state.inputs())
                change = state.apply(estimate)
                if change is not None and self.journal is not None:
                    self._write(self.journal.threshold, state.alias, change)
                if not self._refreshing[state.alias]:
                    break
        except Exception:
            log.exception("re-estimating the threshold of %s failed", state.alias)
        finally:
            del self._refreshing[state.alias]

    # -- feedback ----------------------------------------------------------------------------

    async def feedback(
        self,
        caller: Caller,
        *,
        request_id: str | None,
        entry_id: int | None,
        verdict: str,
        reason: str,
    ) -> dict[str, Any]:
        """Apply a verdict on a hit the caller received (403/404 otherwise)."""
        cache = self.cache
        if cache is None:
            raise ServiceUnavailable("the cache is not loaded: there are no hits to judge")
        hit = self.hits.find(caller, request_id, entry_id)
        applied = "recorded"
        if verdict == "bad":
            if hit.kind == "exact":
                deleted = await cache.delete(hit.entry_id)
                applied = "entry_deleted" if deleted else "entry_already_gone"
            else:
                vector = await self._embed(hit.prompt)
                self.hoods.close(hit.scope, hit.entry_key, vector)
                if self.journal is not None:
                    self._write(self.journal.block, hit.scope, hit.entry_key, vector.tobytes())
                applied = "neighbourhood_closed"
                state = self.thresholds.get(hit.alias)
                if state is not None:
                    state.bad.append(hit.similarity)
                    self._refresh(state)
        self.verdicts[(hit.alias, hit.tenant, verdict)] += 1
        record = {
            "t": time.time(),
            "alias": hit.alias,
            "tenant": hit.tenant,
            "key_id": hit.key_id or "",
            "request_id": hit.request_id,
            "entry_id": hit.entry_id,
            "verdict": verdict,
            "reason": reason,
            "similarity": hit.similarity,
            "applied": applied,
        }
        if self.journal is not None:
            self._write(self.journal.feedback, record)
        return {
            "object": "cache.feedback",
            "request_id": hit.request_id,
            "entry": hit.entry_id,
            "model": hit.alias,
            "verdict": verdict,
            "hit": hit.kind,
            "similarity": round(hit.similarity, 4),
            "applied": applied,
        }

    async def _embed(self, text: str) -> np.ndarray:
        encode = self.comparer.encode
        if encode is None:
            raise ServiceUnavailable("the semantic cache is off: nothing to close")
        vectors: np.ndarray = np.asarray(await self._blocking(encode, [text]), dtype=np.float32)
        return np.ascontiguousarray(vectors[0])

    # -- reporting ---------------------------------------------------------------------------

    async def audit_records(self, limit: int, alias: str | None) -> list[dict[str, Any]]:
        if self.journal is None:
            return []
        records: list[dict[str, Any]] = await self._blocking(self.journal.audits, limit, alias)
        return records

    def snapshot(self) -> dict[str, Any]:
        """The ``quality`` section of ``/stats`` (from memory)."""
        aliases: dict[str, Any] = {}
        for alias, state in sorted(self.thresholds.items()):
            policy = state.policy
            doc = {
                **state.snapshot(),
                **self.audits.alias(alias).to_dict(),
                "audit_rate": policy.audit_rate,
                "audit_budget_usd": policy.audit_budget_usd,
                "audit_spend_usd_today": round(self.audits.spent_today("audit", alias), 6),
                "audit_spend_usd": round(self.audits.total.get(("audit", alias), 0.0), 6),
                "shadow_spend_usd": round(self.audits.total.get(("shadow", alias), 0.0), 6),
                "bad_feedback": sum(
                    n for (a, _, v), n in self.verdicts.items() if a == alias and v == "bad"
                ),
                "good_feedback": sum(
                    n for (a, _, v), n in self.verdicts.items() if a == alias and v == "good"
                ),
            }
            aliases[alias] = doc
        feedback: dict[str, dict[str, dict[str, int]]] = {}
        for (alias, tenant, verdict), n in sorted(self.verdicts.items()):
            feedback.setdefault(alias, {}).setdefault(tenant, {"bad": 0, "good": 0})[verdict] = n
        lane = self.lane
        return {
            "models": aliases,
            "shadow": self.shadow.snapshot(),
            "feedback": feedback,
            "closed_neighbourhoods": len(self.hoods),
            "side_traffic": {
                "in_flight": lane.in_flight,
                "max_in_flight": lane.max_in_flight,
                "started": _by_kind(lane.started),
                "dropped": _by_kind(lane.dropped),
                "failed": _by_kind(lane.failed),
            },
        }


def _by_kind(counts: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (kind, alias), n in sorted(counts.items()):
        out.setdefault(kind, {})[alias] = n
    return out


def _log_failure(future: Future[Any]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("quality journal write failed: %r", exc)
