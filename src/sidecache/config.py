"""Configuration: one TOML file decoded into msgspec Structs.

Strings may hold ``${VAR}`` or ``${VAR:-default}``; they are replaced from the environment
before decoding so secrets never need to sit in the file. Every field has a default and is
documented in README.md; unknown fields are rejected so a typo fails at start with its path.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from sidecache.errors import ConfigError


class Base(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True, frozen=True
):
    """Shared Struct options: strict fields, keyword construction, immutable after load."""


Seconds = Annotated[float, Meta(ge=0)]
Positive = Annotated[int, Meta(ge=1)]
Unit = Annotated[float, Meta(ge=0, le=1)]


class Timeouts(Base, frozen=True):
    """Per-provider timeouts: connect, wait for the first byte, and the whole request."""

    connect: Seconds = 5.0
    first_byte: Seconds = 60.0
    total: Seconds = 600.0


class ProviderConfig(Base, frozen=True):
    """One upstream API endpoint and its credentials."""

    kind: Literal["openai", "anthropic"] = "openai"
    base_url: str = ""
    api_key: str = ""
    headers: dict[str, str] = {}
    timeouts: Timeouts = Timeouts()
    max_connections: Positive = 100
    anthropic_version: str = "2023-06-01"


class Target(Base, frozen=True):
    """``provider/upstream-model`` with an optional weight for the weighted strategy."""

    target: str
    weight: Annotated[float, Meta(gt=0)] = 1.0


class ModelAlias(Base, frozen=True):
    """What a client asks for; which upstream targets serve it and how to pick one."""

    targets: Annotated[list[Target], Meta(min_length=1)]
    strategy: Literal["round-robin", "weighted", "fallback"] = "round-robin"
    threshold: Unit | None = None
    verifier: bool | None = None
    cache: bool = True


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


class RoutingConfig(Base, frozen=True):
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()


class ServerConfig(Base, frozen=True):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8080
    max_body_bytes: Positive = 1_048_576
    admin_key: str = ""
    data_dir: str = ".sidecache"
    log_prompts: bool = False
    allow_anonymous: bool | None = None
    """None: anonymous requests are allowed only when bound to loopback and no key exists."""


class EmbedderConfig(Base, frozen=True):
    """The local sentence embedding model; never downloaded."""

    backend: Literal["onnx", "torch"] = "onnx"
    """``onnx``: with the defaults below, the int8 all-MiniLM-L6-v2 shipped in the package (no
    torch needed); ``torch``: sentence-transformers (needs the ``torch`` extra)."""
    model_path: str = ""
    """A local sentence-transformers folder, exported to ONNX at first start (needs the ``torch``
    extra); empty: the bundled all-MiniLM-L6-v2."""
    adapter: str = "auto"
    """A low-rank adapter merged into the model at start (needs the ``torch`` extra): ``auto``
    (the one shipped in the package, with the bundled model only; none is shipped today),
    ``none``, or the path of an adapter ``.npz``."""
    onnx_dir: str = ""
    """Where files made from the model at start are kept (the ONNX export, the model with its
    adapter merged); empty: ``<data_dir>/onnx``. Several data directories may share one. Unused
    by the shipped model."""
    quantize: bool = True
    """int8: the shipped model (static scales), or dynamic quantisation of a start-time export;
    false: an fp32 export at start (needs the ``torch`` extra)."""
    max_batch: Positive = 16
    """Texts per model call at most. With two workers, 16 beat 32 under 64 clients (semantic
    hits/s 598-704 against 514-581 in back-to-back runs): two half batches run at once."""
    max_wait_ms: Seconds = 2.0
    threads: Annotated[int, Meta(ge=0)] = 1
    """Threads inside one model call; 0: the library's default (every core). One thread
    leaves the other cores to the event loop and lets concurrent requests form larger batches:
    on 2 cores, semantic hits/s with 64 clients rose from about 414 to 496 with it."""
    workers: Positive = 2
    """Embedding worker threads: while one batch is in the model the next one forms and runs
    on another core (the model releases the GIL)."""


class VerifierConfig(Base, frozen=True):
    """The hit verifier: checks that a semantic match really answers the new prompt."""

    enabled: bool = True
    model_path: str = ""
    """Learned parameters; empty: the file shipped in the package."""
    cutoff: Unit | None = None
    """Probability the learned score must reach; None: the cutoff shipped with the model."""


class RedisConfig(Base, frozen=True):
    """The shared backend: entries live in Redis and every replica mirrors the vectors."""

    url: str = "redis://127.0.0.1:6379/0"
    """``redis://``, ``rediss://`` (TLS) or ``unix://``; use ``${ENV}`` for a password."""
    key_prefix: str = "sidecache:"
    """Every key starts with it, so two deployments can share one server."""
    stream_maxlen: Annotated[int, Meta(ge=1000)] = 100_000
    """Approximate length the change stream is trimmed to (a replica further behind resyncs)."""
    timeout_seconds: Annotated[float, Meta(gt=0)] = 2.0
    """Connect and command timeout: a Redis that stops answering turns lookups into misses."""


class CacheConfig(Base, frozen=True):
    enabled: bool = True
    semantic: bool = True
    threshold: Unit = 0.9
    ttl_seconds: Seconds = 0.0
    """0: entries never expire."""
    max_entries: Positive = 100_000
    hnsw_min_size: Positive = 10_000
    cache_images: bool = False
    cache_tool_results: bool = False
    sweep_interval_seconds: Seconds = 30.0
    replay_chunk_chars: Positive = 24
    embedder: EmbedderConfig = EmbedderConfig()
    verifier: VerifierConfig = VerifierConfig()
    store: Literal["sqlite", "redis"] = "sqlite"
    """Where entries live: SQLite under ``data_dir`` (one machine) or Redis (many replicas)."""
    redis: RedisConfig = RedisConfig()


class Price(Base, frozen=True):
    """USD per million tokens."""

    input: Seconds
    output: Seconds
    cached_input: Seconds | None = None
    """USD per million prompt tokens served from the provider's own prompt cache, if it has one."""


class TenantBudget(Base, frozen=True):
    """A spend ceiling shared by every key of one tenant."""

    usd: Annotated[float, Meta(ge=0)]
    period: Literal["day", "month"] = "month"


class LimitsConfig(Base, frozen=True):
    hits_count_tokens: bool = False
    """Cache hits use up the key's tokens-per-minute allowance (they always count as requests)."""
    serve_hits_over_budget: bool = True
    tenant_budgets: dict[str, TenantBudget] = {}
    """Spend ceilings per tenant name, on top of each key's own budget."""
    budget_flush_seconds: Annotated[float, Meta(gt=0)] = 1.0
    """How often recorded spend is written to the state database (and re-read from it)."""


class PIIConfig(Base, frozen=True):
    enabled: bool = False
    redact_upstream: bool = False
    never_cache: bool = False
    kinds: list[Literal["email", "phone", "card", "iban", "ip", "secret"]] = []
    """Which kinds to detect; empty: all of them."""


class ObservabilityConfig(Base, frozen=True):
    """The in-memory statistics behind ``/stats`` and the dashboard, and the access log."""

    access_log: bool = True
    stats_bucket_seconds: Annotated[int, Meta(ge=1, le=3600)] = 10
    stats_window_seconds: Annotated[int, Meta(ge=60, le=86_400)] = 3600
    latency_samples: Annotated[int, Meta(ge=16, le=100_000)] = 1024
    """Recent latencies kept per provider and outcome for the p50/p95 figures."""
    max_tags: Annotated[int, Meta(ge=0)] = 200
    """Distinct ``key=value`` tags tracked in ``/stats``; later ones count under ``_other``."""


class Config(Base, frozen=True):
    server: ServerConfig = ServerConfig()
    providers: dict[str, ProviderConfig] = {}
    models: dict[str, ModelAlias] = {}
    routing: RoutingConfig = RoutingConfig()
    cache: CacheConfig = CacheConfig()
    pricing: dict[str, Price] = {}
    limits: LimitsConfig = LimitsConfig()
    pii: PIIConfig = PIIConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    passthrough_models: bool = False
    """Route a model name that is no alias to the first provider unchanged (env mode)."""


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: Any, path: str, env: dict[str, str]) -> Any:
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            where = path.removeprefix("$.")
            raise ConfigError(f"config field {where} refers to ${{{name}}}, which is not set")

        return _ENV_REF.sub(repl, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{path}.{k}", env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]", env) for i, v in enumerate(value)]
    return value


def _validate(cfg: Config) -> Config:
    for alias, model in cfg.models.items():
        for t in model.targets:
            provider, sep, upstream = t.target.partition("/")
            if not sep or not upstream:
                raise ConfigError(
                    f"config field models.{alias}.targets: {t.target!r} is not 'provider/model'"
                )
            if provider not in cfg.providers:
                raise ConfigError(
                    f"config field models.{alias}.targets: provider {provider!r} is not defined"
                    f" under [providers]"
                )
    for name, p in cfg.providers.items():
        if not p.base_url:
            raise ConfigError(f"config field providers.{name}.base_url is empty")
    return cfg


def from_dict(data: dict[str, Any], env: dict[str, str] | None = None) -> Config:
    """Interpolate ``${ENV}`` references and decode into a validated ``Config``."""
    data = _interpolate(data, "$", dict(os.environ) if env is None else env)
    try:
        cfg = msgspec.convert(data, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {_locate(data, exc)}") from exc
    return _validate(cfg)


_NAMED_SECTIONS: dict[str, type[Base]] = {
    "providers": ProviderConfig,
    "models": ModelAlias,
    "pricing": Price,
}


def _locate(data: dict[str, Any], exc: msgspec.ValidationError) -> str:
    """The error with its full path: msgspec writes ``models[...]`` where the alias belongs."""
    for section, struct in _NAMED_SECTIONS.items():
        entries = data.get(section)
        if not isinstance(entries, dict):
            continue
        for name, value in entries.items():
            try:
                msgspec.convert(value, struct)
            except msgspec.ValidationError as inner:
                return str(inner).replace("`$", f"`{section}.{name}")
    return str(exc).replace("`$.", "`")


def load(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read a TOML file; errors name the file and the bad field."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    try:
        return from_dict(data, env)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from exc


def from_env(env: dict[str, str] | None = None) -> Config:
    """Providers from the usual variables, for running with no config file.

    ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` make an ``openai`` provider (any OpenAI-compatible
    server), ``ANTHROPIC_API_KEY`` an ``anthropic`` one. Model names pass through unchanged;
    ``claude-*`` names go to Anthropic when it is configured.
    """
    env = dict(os.environ) if env is None else env
    providers: dict[str, Any] = {}
    if env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL"):
        providers["openai"] = {
            "kind": "openai",
            "base_url": env.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
            "api_key": env.get("OPENAI_API_KEY", ""),
        }
    if env.get("ANTHROPIC_API_KEY"):
        providers["anthropic"] = {
            "kind": "anthropic",
            "base_url": env.get("ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
            "api_key": env["ANTHROPIC_API_KEY"],
        }
    data: dict[str, Any] = {"providers": providers, "passthrough_models": True}
    if env.get("SIDECACHE_ADMIN_KEY"):
        data["server"] = {"admin_key": env["SIDECACHE_ADMIN_KEY"]}
    return from_dict(data, env)
