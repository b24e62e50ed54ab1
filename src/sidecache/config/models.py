"""``[models.ALIAS]`` and ``[routing]``: what clients ask for and how a target is chosen."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from msgspec import Meta

from sidecache.config.base import Base, Positive, Seconds, Unit
from sidecache.config.side_traffic import ErrorRate, Shadow
from sidecache.errors import ConfigError

StrategyName = Literal[
    "round-robin", "weighted", "fallback", "cheapest", "fastest", "least-busy", "reliable"
]
"""The routing strategies (``sidecache.routing.strategies.STRATEGIES`` has one per name)."""

Label = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
"""A region or tag value: letters, digits and ``_.:-``, as it appears in headers and metrics."""


class Target(Base, frozen=True):
    """``provider/upstream-model`` with an optional weight for the weighted strategy, where it
    runs and the provider's own limits for it.

    A target is one upstream endpoint, shared by every alias that names it: its region, tags
    and limits may be declared on any one of its mentions (the others inherit them), and two
    mentions that declare different values are a configuration error.
    """

    target: str
    weight: Annotated[float, Meta(gt=0)] = 1.0
    region: Label | None = None
    """Where the provider processes requests (``"eu"``); region-pinned keys and tenants use
    only targets whose region they allow, even on fallback."""
    tags: dict[str, Label] = {}
    """Any other labels (``{tier = "batch", gpu = "h100"}``), shown in ``/stats``."""
    rpm: Positive | None = None
    """The provider's requests-per-minute limit for this target: never exceeded."""
    tpm: Positive | None = None
    """The provider's tokens-per-minute limit (prompt + expected completion)."""


class Variant(Target, frozen=True, kw_only=True):
    """One arm of an A/B split: a target and its share of the alias's traffic."""

    share: Annotated[float, Meta(gt=0)]
    name: Label | None = None
    """The label in ``/stats``, metrics and the ``x-sidecache-variant`` header; default:
    the target."""

    @property
    def label(self) -> str:
        return self.name or self.target


class ModelAlias(Base, frozen=True):
    """What a client asks for; which upstream targets serve it and how to pick one."""

    targets: list[Target] = []
    """Required unless ``variants`` are given."""
    strategy: StrategyName = "round-robin"
    threshold: Unit | None = None
    verifier: bool | None = None
    cache: bool = True
    # Side traffic (config/side_traffic.py): a shadow target, audits of hits, adaptive threshold.
    shadow: Shadow | None = None
    audit_rate: Unit = 0.0
    """Share of semantic-hit lookups audited after the client's answer (0: none)."""
    audit_budget_usd: Annotated[float, Meta(ge=0)] = 1.0
    """Most the alias's audits may spend per UTC day (apart from every tenant's budget)."""
    audit_agree: Unit = 0.85
    """Cosine of two answers' embeddings at or above which an audit calls them the same."""
    target_error_rate: ErrorRate | None = None
    """Wrong-hit rate the effective threshold is moved to hold; None: the threshold is fixed."""
    min_threshold: Unit | None = None
    """Lowest threshold the alias may move to; None: its configured threshold."""
    variants: list[Variant] = []
    """An A/B split: each request goes first to one variant's target, by share, sticky per
    key (or per ``user`` field); the other targets remain fallbacks."""
    sticky: Literal["key", "user"] = "key"
    """What keeps a caller on one variant: its key, or the request's ``user`` field (else
    its key)."""

    def all_targets(self) -> list[Target]:
        """The variants' targets, then the other targets, each once (in configured order)."""
        seen: set[str] = set()
        out: list[Target] = []
        for t in [*self.variants, *self.targets]:
            if t.target not in seen:
                seen.add(t.target)
                out.append(t)
        return out


class RetryConfig(Base, frozen=True):
    """Retries across targets before the first byte reaches the client."""

    max_attempts: Positive = 3
    backoff_base: Seconds = 0.05
    backoff_max: Seconds = 2.0
    retry_after_max: Seconds = 30.0


class BreakerConfig(Base, frozen=True):
    """A target's circuit opens after this many consecutive failures, for a cool-down."""

    failure_threshold: Positive = 5
    cooldown_seconds: Seconds = 30.0


class HealthConfig(Base, frozen=True):
    """How the router estimates each target's latency and error rate (``fastest``,
    ``reliable``): exponentially decayed averages plus a window of recent latencies."""

    half_life_seconds: Annotated[float, Meta(gt=0)] = 30.0
    """An observation this old weighs half as much as a new one; an error rate also fades
    with this half-life while the target gets no traffic, so a recovered target is tried."""
    window: Annotated[int, Meta(ge=8, le=10_000)] = 200
    """Recent latencies kept per target for the p95."""
    explore_share: Unit = 0.05
    """Share of ``fastest`` requests sent first to a target that is not the fastest, so a
    target that recovered is noticed."""


class RoutingConfig(Base, frozen=True):
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    health: HealthConfig = HealthConfig()
    queue_timeout_seconds: Seconds = 5.0
    """When every target of an alias is at its declared ``rpm``/``tpm``, how long a request
    waits for capacity before it gets 429 with ``Retry-After``."""


def check_models(models: dict[str, ModelAlias], providers: Iterable[str]) -> None:
    """Targets name a configured provider, aliases have targets, declarations agree."""
    known = set(providers)
    declared: dict[str, dict[str, object]] = {}
    for alias, model in models.items():
        if not model.targets and not model.variants:
            raise ConfigError(f"config field models.{alias}: needs targets or variants")
        for field, items in (("targets", model.targets), ("variants", model.variants)):
            for t in items:
                provider, sep, upstream = t.target.partition("/")
                where = f"config field models.{alias}.{field}"
                if not sep or not upstream:
                    raise ConfigError(f"{where}: {t.target!r} is not 'provider/model'")
                if provider not in known:
                    raise ConfigError(
                        f"{where}: provider {provider!r} is not defined under [providers]"
                    )
                _agree(declared.setdefault(t.target, {}), t, where)
        names = [v.label for v in model.variants]
        if len(set(names)) != len(names):
            raise ConfigError(f"config field models.{alias}.variants: two variants share a name")


def _agree(seen: dict[str, object], t: Target, where: str) -> None:
    """One target, one region, one set of tags and limits, whichever alias declares them."""
    for field in ("region", "tags", "rpm", "tpm"):
        value = getattr(t, field)
        if value is None or value == {}:
            continue
        before = seen.setdefault(field, value)
        if before != value:
            raise ConfigError(
                f"{where}: target {t.target!r} is declared with {field} = {before!r} and"
                f" {value!r}; declare it once"
            )
