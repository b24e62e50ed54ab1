"""``/admin/keys`` over real HTTP, on both stores (``state.db`` and a real ``redis-server``).

A back office creates a key, lists it, rotates it (the old secret works through the grace
period, then gets 401) and revokes it; a tenant key opens none of these paths, and bad input is
a 400 that names the field, never a 500.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import Gateway, UpstreamSet, basic_config
from support.counters import wait_for
from support.keys import create_key, keys_cli
from support.redis_server import RedisServer, redis_prefix, redis_server

__all__ = ["redis_prefix", "redis_server"]

ADMIN = "sk-admin-keys-e2e"
PLANS = "[plans.pro]\nrpm = 600\n"


def shared(url: str, prefix: str) -> str:
    return f'[redis]\nurl = "{url}"\nkey_prefix = "{prefix}"\n[governance]\nstore = "redis"\n'


@pytest.fixture(params=["sqlite", "redis"])
def gateway(
    request: pytest.FixtureRequest,
    upstreams: UpstreamSet,
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
    redis_prefix: str,
) -> Gateway:
    extra = PLANS
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        extra += shared(server.url, redis_prefix)
    return gateway_factory(
        basic_config(upstreams, tmp_path, server_extra=f'admin_key = "{ADMIN}"', extra=extra)
    )


def chat(gw: Gateway, key: str, text: str = "hello") -> int:
    body = {"model": "m1", "messages": [{"role": "user", "content": text}]}
    with gw.http(key) as http:
        return http.post("/v1/chat/completions", json=body).status_code


def admin(gw: Gateway) -> httpx.Client:
    return gw.http(ADMIN)


def test_create_list_rotate_revoke(gateway: Gateway) -> None:
    gw = gateway
    with admin(gw) as http:
        r = http.post(
            "/admin/keys",
            json={"tenant": "acme", "models": ["m1"], "rpm": 100, "budget_usd": 5},
        )
        assert r.status_code == 201, r.text
        made: dict[str, Any] = r.json()
        raw, kid = made["key"], made["id"]
        assert raw.startswith(made["prefix"]) and made["budget_period"] == "month"
        assert made["tenant"] == "acme" and made["models"] == ["m1"] and not made["revoked"]
        assert chat(gw, raw) == 200  # usable at once

        listed = http.get("/admin/keys").json()["data"]
        row = next(k for k in listed if k["id"] == kid)
        assert "key" not in row and raw not in http.get("/admin/keys").text
        assert row["prefix"] == made["prefix"] and row["rpm"] == 100
        other = http.post("/admin/keys", json={"tenant": "globex"}).json()
        assert [k["id"] for k in http.get("/admin/keys?tenant=globex").json()["data"]] == [
            other["id"]
        ]

        r = http.post(f"/admin/keys/{kid}/rotate", json={"grace_seconds": 1.5})
        assert r.status_code == 200, r.text
        rotated = r.json()
        new = rotated["key"]
        assert rotated["id"] == kid and new != raw and rotated["grace_until"] > time.time()
        assert chat(gw, new) == 200 and chat(gw, raw) == 200  # both, during the grace period
        assert wait_for(lambda: chat(gw, raw) == 401, 5.0)  # then the old one is refused
        assert chat(gw, new) == 200

        t0 = time.monotonic()
        r = http.delete(f"/admin/keys/{kid}")
        assert r.status_code == 200 and r.json()["revoked"] is True
        assert wait_for(lambda: chat(gw, new) == 401, 1.0)
        assert time.monotonic() - t0 < 1.0
        active = http.get("/admin/keys?include_revoked=false").json()["data"]
        assert kid not in [k["id"] for k in active]

    # the CLI and the HTTP API are one store
    listed = keys_cli(gw.config_path, "list", "--all")
    assert kid in listed.stdout and other["id"] in listed.stdout
    logs = gw.logs()
    assert raw not in logs and new not in logs


def test_tenant_keys_and_strangers_get_401_on_every_admin_keys_path(gateway: Gateway) -> None:
    gw = gateway
    tenant = create_key(gw.config_path, "acme")
    paths = [
        ("POST", "/admin/keys", {"tenant": "evil"}),
        ("GET", "/admin/keys", None),
        ("DELETE", f"/admin/keys/{tenant.id}", None),
        ("POST", f"/admin/keys/{tenant.id}/rotate", {}),
    ]
    for credential in (tenant.raw, None, "sk-sc-made-up"):
        with gw.http(credential) as http:
            for method, path, body in paths:
                r = http.request(method, path, json=body)
                assert r.status_code == 401, (credential, method, path, r.text)
                assert r.json()["error"]["code"] in ("invalid_admin_key", "invalid_api_key")
                assert "acme" not in r.text
            assert http.get("/admin/keys", params={"key": tenant.raw}).status_code == 401
    assert chat(gw, tenant.raw) == 200  # untouched
    with admin(gw) as http:
        assert [k["tenant"] for k in http.get("/admin/keys").json()["data"]] == ["acme"]


BAD_INPUT: list[tuple[str, str, Any, int, str | None]] = [
    ("POST", "/admin/keys", {}, 400, "tenant"),
    ("POST", "/admin/keys", {"tenant": ""}, 400, "tenant"),
    ("POST", "/admin/keys", {"tenant": "t", "rpm": 0}, 400, "rpm"),
    ("POST", "/admin/keys", {"tenant": "t", "rpm": "ten"}, 400, "rpm"),
    ("POST", "/admin/keys", {"tenant": "t", "budget_usd": -1}, 400, "budget_usd"),
    ("POST", "/admin/keys", {"tenant": "t", "budget_period": "year"}, 400, "budget_period"),
    ("POST", "/admin/keys", {"tenant": "t", "rmp": 5}, 400, "rmp"),
    ("POST", "/admin/keys", {"tenant": "t", "plan": "gold"}, 400, "plan"),
    ("POST", "/admin/keys", {"tenant": "t", "regions": []}, 400, "regions"),
    ("POST", "/admin/keys", {"tenant": "t", "regions": ["e u"]}, 400, "regions"),
    ("POST", "/admin/keys", b"{not json", 400, None),
    ("POST", "/admin/keys", [1, 2], 400, None),
    ("DELETE", "/admin/keys/key_0000000000000000", None, 404, "id"),
    ("DELETE", "/admin/keys/nonsense", None, 404, "id"),
    ("POST", "/admin/keys/key_0000000000000000/rotate", {}, 404, "id"),
    ("POST", "/admin/keys/KEY/rotate", {"grace_seconds": -1}, 400, "grace_seconds"),
    ("POST", "/admin/keys/KEY/rotate", {"grace_seconds": 1e12}, 400, "grace_seconds"),
    ("POST", "/admin/keys/KEY/rotate", {"grace": 5}, 400, "grace"),
    ("PUT", "/admin/keys", {}, 405, None),
]


def test_regions_and_plan_are_the_clis_options_too(gateway: Gateway) -> None:
    with admin(gateway) as http:
        r = http.post("/admin/keys", json={"tenant": "eu-co", "regions": ["eu"], "plan": "pro"})
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["regions"] == ["eu"] and made["plan"] == "pro"
        listed = http.get("/admin/keys", params={"tenant": "eu-co"}).json()["data"]
        assert [(k["id"], k["regions"], k["plan"]) for k in listed] == [(made["id"], ["eu"], "pro")]
    # the key is pinned: a request narrowed to another region is refused, never routed there
    body = {"model": "m1", "messages": [{"role": "user", "content": "hello"}]}
    with gateway.http(made["key"]) as http:
        r = http.post("/v1/chat/completions", json=body, headers={"x-sidecache-region": "us"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "region_not_allowed", r.text


def test_bad_input_is_a_clear_4xx_naming_the_field(gateway: Gateway) -> None:
    gw = gateway
    with admin(gw) as http:
        kid = http.post("/admin/keys", json={"tenant": "t"}).json()["id"]
        for method, path, body, status, param in BAD_INPUT:
            kw: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
            r = http.request(method, path.replace("KEY", kid), **kw)
            assert r.status_code == status, (method, path, body, r.text)
            err = r.json()["error"]
            assert err["message"] and err["param"] == param, (method, path, body, err)
        assert http.get("/admin/keys?include_revoked=maybe").status_code == 400
    assert "Traceback" not in gw.logs()
