"""The per-alias side-traffic fields and ``[side_traffic]``: defaults, and errors that name the
field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecache import config
from sidecache.errors import ConfigError
from sidecache.quality.thresholds import policy_of

BASE = """
[providers.a]
base_url = "http://127.0.0.1:1/v1"
[providers.b]
base_url = "http://127.0.0.1:2/v1"

[models.m]
targets = [{target = "a/x"}]
"""


def load(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return config.load(path, env={})


def test_defaults_leave_side_traffic_off(tmp_path: Path) -> None:
    cfg = load(tmp_path, BASE)
    m = cfg.models["m"]
    assert m.shadow is None and m.audit_rate == 0.0 and m.target_error_rate is None
    assert m.audit_budget_usd == 1.0 and m.audit_agree == 0.85 and m.min_threshold is None
    assert cfg.side_traffic.max_in_flight == 8 and cfg.side_traffic.timeout_seconds == 120.0
    policy = policy_of(cfg, m)
    default = config.CacheConfig().threshold
    assert policy.configured == policy.floor == default and not policy.adaptive


def test_everything_set(tmp_path: Path) -> None:
    text = BASE + (
        'shadow = {target = "b/y", rate = 0.25}\naudit_rate = 0.02\naudit_budget_usd = 5\n'
        "audit_agree = 0.8\ntarget_error_rate = 0.02\nthreshold = 0.85\nmin_threshold = 0.75\n"
        "[side_traffic]\nmax_in_flight = 4\ntimeout_seconds = 30\n"
    )
    cfg = load(tmp_path, text)
    m = cfg.models["m"]
    assert m.shadow is not None and m.shadow.target == "b/y" and m.shadow.rate == 0.25
    policy = policy_of(cfg, m)
    assert (policy.configured, policy.floor, policy.target) == (0.85, 0.75, 0.02)
    assert cfg.side_traffic.max_in_flight == 4


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ('shadow = {target = "nowhere/y"}\n', "models.m.shadow.target: provider 'nowhere'"),
        ('shadow = {target = "y"}\n', "models.m.shadow.target: 'y' is not 'provider/model'"),
        ('shadow = {target = "b/y", rate = 2}\n', "rate"),
        ("audit_rate = 1.5\n", "audit_rate"),
        ("target_error_rate = 0\n", "target_error_rate"),
        ("audit_budget_usd = -1\n", "audit_budget_usd"),
        (
            "min_threshold = 0.95\n",
            "min_threshold (0.95) is above the alias's threshold"
            f" ({config.CacheConfig().threshold:g})",
        ),
        ("audit_rat = 0.1\n", "audit_rat"),
        ("[side_traffic]\nmax_in_flight = 0\n", "max_in_flight"),
    ],
)
def test_a_bad_field_is_named(tmp_path: Path, extra: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, BASE + extra)
    assert needle in info.value.message
