"""Configuration: TOML decoding, ${ENV} interpolation, and start-up errors that name the field."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sidecache import config
from sidecache.errors import ConfigError

GOOD = """
[server]
admin_key = "${ADMIN:-none}"

[providers.local]
base_url = "${BASE}/v1"
api_key = "${KEY}"

[models.m]
strategy = "weighted"
targets = [{target = "local/llama3", weight = 2}]
"""


def test_interpolation_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(GOOD)
    cfg = config.load(path, env={"BASE": "http://127.0.0.1:11434", "KEY": "sk-x"})
    assert cfg.providers["local"].base_url == "http://127.0.0.1:11434/v1"
    assert cfg.providers["local"].api_key == "sk-x"
    assert cfg.server.admin_key == "none"
    assert cfg.models["m"].targets[0].weight == 2
    assert cfg.cache.embedder.backend == "onnx"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (GOOD.replace("weight = 2", "weight = -1"), "models.m.targets[0].weight"),
        (GOOD + "\n[cache]\nthreshhold = 0.9\n", "threshhold"),
        (GOOD.replace('"local/llama3"', '"nowhere/llama3"'), "models.m.targets"),
        (GOOD.replace('"local/llama3"', '"llama3"'), "provider/model"),
        (GOOD.replace('api_key = "${KEY}"', 'api_key = "${MISSING_VAR}"'), "MISSING_VAR"),
        ("[server\n", "not valid TOML"),
        (GOOD.replace('strategy = "weighted"', 'strategy = "random"'), "strategy"),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        config.load(path, env={"BASE": "http://x", "KEY": "k"})
    assert needle in info.value.message


def test_from_env_providers() -> None:
    cfg = config.from_env(
        {"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "ANTHROPIC_API_KEY": "sk-ant"}
    )
    assert set(cfg.providers) == {"openai", "anthropic"}
    assert cfg.passthrough_models
    assert config.from_env({}).providers == {}


def test_serve_exits_with_a_clear_message_on_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[server]\nport = 'eighty'\n")
    r = subprocess.run(
        [sys.executable, "-m", "sidecache", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "server.port" in r.stderr and str(path) in r.stderr


ROUTING = """
[providers.a]
base_url = "http://a/v1"
[providers.b]
base_url = "http://b/v1"

[models.m]
strategy = "cheapest"
targets = [{target = "a/x", region = "eu", rpm = 60, tags = {tier = "batch"}}, {target = "b/y"}]

[models.split]
variants = [{target = "a/x", share = 0.9}, {target = "b/z", share = 0.1, name = "candidate"}]

[plans.pro]
models = ["m"]
rpm = 10
budget = {usd = 5}

[tenants.acme]
plan = "pro"
regions = ["eu"]
"""


def test_routing_tenants_plans_and_alerts_decode() -> None:
    cfg = config.from_dict(tomllib.loads(ROUTING))
    m = cfg.models["m"]
    assert m.strategy == "cheapest" and m.targets[0].region == "eu" and m.targets[0].rpm == 60
    split = cfg.models["split"]
    assert [v.label for v in split.variants] == ["a/x", "candidate"]
    assert [t.target for t in split.all_targets()] == ["a/x", "b/z"]
    assert cfg.plans["pro"].budget is not None and cfg.plans["pro"].budget.period == "month"
    assert cfg.tenants["acme"].regions == ["eu"]
    assert cfg.alerts.thresholds == [0.5, 0.8, 1.0] and cfg.alerts.webhook_url == ""
    assert cfg.routing.queue_timeout_seconds == 5.0 and cfg.routing.health.explore_share == 0.05


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            ("[models.n]", '[models.n]\ntargets = [{target = "a/x", region = "us"}]'),
            "declare it once",
        ),
        (
            ("[models.split]\n", '[models.none]\nstrategy = "fastest"\n\n[models.split]\n'),
            "models.none",
        ),
        (('plan = "pro"', 'plan = "gold"'), "tenants.acme.plan"),
        (('models = ["m"]', 'models = ["mm"]'), "plans.pro.models"),
        (('regions = ["eu"]', 'regions = ["e u"]'), "tenants.acme.regions"),
        (("share = 0.1, name", "share = 0, name"), "share"),
    ],
)
def test_bad_routing_config_names_the_field(change: tuple[str, str], needle: str) -> None:
    old, new = change
    text = ROUTING + "\n[models.n]\n" if old == "[models.n]" else ROUTING
    with pytest.raises(ConfigError) as info:
        config.from_dict(tomllib.loads(text.replace(old, new, 1)))
    assert needle in info.value.message


def test_redis_is_one_section_under_either_name() -> None:
    old = config.from_dict({"cache": {"store": "redis", "redis": {"url": "redis://h:1/0"}}})
    assert old.redis.url == old.cache.redis.url == "redis://h:1/0"  # [cache.redis], older files
    new = config.from_dict({"redis": {"url": "redis://h:2/0", "key_prefix": "p:"}})
    assert new.cache.redis.url == "redis://h:2/0" and new.cache.redis.key_prefix == "p:"
    same = {"url": "redis://h:3/0"}
    assert config.from_dict({"redis": same, "cache": {"redis": same}}).redis.url == same["url"]
    with pytest.raises(ConfigError) as info:
        config.from_dict({"redis": same, "cache": {"redis": {"url": "redis://other:3/0"}}})
    assert "[redis]" in info.value.message and "[cache.redis]" in info.value.message


def test_governance_store_and_redis_fault_policy() -> None:
    cfg = config.from_dict({})
    assert cfg.governance.store == "sqlite" and cfg.limits.on_redis_down == "open"
    cfg = config.from_dict(
        {"governance": {"store": "redis"}, "limits": {"on_redis_down": "closed"}}
    )
    assert cfg.governance.store == "redis" and cfg.limits.on_redis_down == "closed"
    with pytest.raises(ConfigError) as info:
        config.from_dict({"limits": {"on_redis_down": "maybe"}})
    assert "on_redis_down" in info.value.message
