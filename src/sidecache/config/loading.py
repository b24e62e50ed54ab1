"""Loading the configuration: one TOML file decoded into msgspec Structs.

Strings may hold ``${VAR}`` or ``${VAR:-default}``; they are replaced from the environment
before decoding so secrets never need to sit in the file. Every field has a default and is
documented in README.md; unknown fields are rejected so a typo fails at start with its path.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import msgspec

from sidecache.config.base import Base
from sidecache.config.document import Config
from sidecache.config.governance import Price
from sidecache.config.models import ModelAlias, check_models
from sidecache.config.providers import ProviderConfig
from sidecache.config.shared import resolve_redis
from sidecache.config.tenants import PlanConfig, TenantConfig, check_tenants
from sidecache.errors import ConfigError

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
    check_models(cfg.models, cfg.providers)
    check_tenants(cfg.tenants, cfg.plans, cfg.models)
    for alias, model in cfg.models.items():
        if model.shadow is not None:
            provider, sep, upstream = model.shadow.target.partition("/")
            where = f"config field models.{alias}.shadow.target"
            if not sep or not upstream:
                raise ConfigError(f"{where}: {model.shadow.target!r} is not 'provider/model'")
            if provider not in cfg.providers:
                raise ConfigError(
                    f"{where}: provider {provider!r} is not defined under [providers]"
                )
        threshold = model.threshold if model.threshold is not None else cfg.cache.threshold
        if model.min_threshold is not None and model.min_threshold > threshold:
            raise ConfigError(
                f"config field models.{alias}.min_threshold ({model.min_threshold:g}) is above"
                f" the alias's threshold ({threshold:g})"
            )
    for name, p in cfg.providers.items():
        if not p.base_url:
            raise ConfigError(f"config field providers.{name}.base_url is empty")
    redis = resolve_redis(cfg.redis, cfg.cache.redis)
    if redis != cfg.redis or redis != cfg.cache.redis:  # one Redis, whichever name set it
        cache = msgspec.structs.replace(cfg.cache, redis=redis)
        cfg = msgspec.structs.replace(cfg, redis=redis, cache=cache)
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
    "tenants": TenantConfig,
    "plans": PlanConfig,
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
    return from_dict(data, env)


SERVER_ENV = {
    "SIDECACHE_HOST": "host",
    "PORT": "port",
    "SIDECACHE_PORT": "port",
    "SIDECACHE_DATA_DIR": "data_dir",
    "SIDECACHE_ADMIN_KEY": "admin_key",
    "SIDECACHE_ALLOW_ANONYMOUS": "allow_anonymous",
}
"""Variables that set ``[server]`` fields (over the file; ``--host``/``--port`` win over both).
``PORT`` is what Cloud Run and similar platforms set; ``SIDECACHE_PORT`` wins over it."""


def server_from_env(cfg: Config, env: dict[str, str] | None = None) -> Config:
    """``cfg`` with the ``[server]`` fields that the environment sets (``SERVER_ENV``)."""
    env = dict(os.environ) if env is None else env
    changes: dict[str, Any] = {}
    for var, field in SERVER_ENV.items():  # later entries win (SIDECACHE_PORT over PORT)
        value = env.get(var)
        if value is None or value == "":
            continue
        if field == "port":
            if not value.isdigit() or not 0 <= int(value) <= 65535:
                raise ConfigError(f"{var}={value!r} is not a port number")
            changes[field] = int(value)
        elif field == "allow_anonymous":
            flag = value.strip().lower()
            if flag not in ("true", "false", "1", "0", "yes", "no"):
                raise ConfigError(f"{var}={value!r} must be true or false")
            changes[field] = flag in ("true", "1", "yes")
        else:
            changes[field] = value
    if not changes:
        return cfg
    return msgspec.structs.replace(cfg, server=msgspec.structs.replace(cfg.server, **changes))
