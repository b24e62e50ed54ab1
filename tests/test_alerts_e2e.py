"""Budget alerts over real HTTP: thresholds of key, plan and tenant budgets post a JSON event
to a local webhook receiver, once per threshold per period (also across a restart), retried
with backoff when the receiver fails, and listed in ``/stats``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from support import Gateway, UpstreamSet, basic_config, free_port
from support.counters import gateway_stats, settled, wait_for
from support.keys import create_key
from support.redis_server import RedisServer, redis_prefix, redis_server
from support.traffic import ask, race
from support.webhook import WebhookReceiver

__all__ = ["redis_prefix", "redis_server"]

# "Answer to: <three words>": five tokens at $200,000 per million = exactly $1 an answer
ALERTS = """
[pricing."gpt-x"]
input = 0.0
output = 200000.0

[alerts]
webhook_url = "{url}"
headers = {{authorization = "Bearer hook-secret"}}
backoff_seconds = 0.05

[plans.team]
budget = {{usd = 4, period = "day"}}
alert_thresholds = [0.25, 1.0]

[limits.tenant_budgets.corp]
usd = 20
"""


def spend(gw: Gateway, key: str, n: int, tag: str) -> list[int]:
    """``n`` one-dollar requests, one after another (each sees the last one's spend)."""
    return [
        race(gw, [ask(f"{tag} job {i:03d}", "m1", max_tokens=5)], key=key)[0].status
        for i in range(n)
    ]


def test_key_thresholds_post_once_each_with_retries_and_survive_a_restart(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    with WebhookReceiver(fail_first=2) as hook:
        gw = gateway_factory(basic_config(upstreams, tmp_path, extra=ALERTS.format(url=hook.url)))
        key = create_key(gw.config_path, "acme", "--budget-usd", "10")
        assert spend(gw, key.raw, 4, "early") == [200] * 4
        assert hook.events == [] and hook.attempts == []  # 40%: nothing yet
        assert spend(gw, key.raw, 1, "half") == [200]  # 50%
        assert wait_for(lambda: len(hook.events) == 1)
        assert len(hook.attempts) == 3  # two 500s, then delivered
        a0, a1, a2 = hook.attempts
        first_wait, second_wait = a1 - a0, a2 - a1
        assert first_wait >= 0.05 and second_wait >= 0.1  # backoff, doubling
        event = hook.events[0]
        assert event["type"] == "budget.threshold_reached" and event["scope"] == "key"
        assert (event["key_id"], event["tenant"], event["threshold"]) == (key.id, "acme", 0.5)
        assert event["budget_usd"] == 10 and event["spent_usd"] == 5 and event["period"] == "month"
        assert hook.headers[0]["authorization"] == "Bearer hook-secret"
        assert key.raw not in json.dumps(event)
        # racing past the two other thresholds: each is posted exactly once
        codes = race(
            gw, [ask(f"rush job {i:03d}", "m1", max_tokens=5) for i in range(8)], key=key.raw
        )
        assert [c.status for c in codes].count(200) == 5  # the budget is a hard ceiling
        assert wait_for(
            lambda: sorted(e["threshold"] for e in hook.events) == [0.5, 0.8, 1.0]
        )  # deliveries in flight together land in either order
        doc = settled(gw, 13)
        alerts = doc["budget_alerts"]
        assert alerts["counts"] == {"delivered": 3}
        assert [a["threshold"] for a in alerts["recent"]] == [1.0, 0.8, 0.5]
        assert alerts["recent"][-1]["attempts"] == 3
        assert hook.url not in json.dumps(doc) and "hook-secret" not in json.dumps(doc)
        with gw.http() as http:
            metrics = http.get("/metrics").text
        assert (
            'sidecache_budget_alerts_total{scope="key",status="delivered",threshold="0.5"}'
            in metrics
        )
        # a restart remembers what was raised this period: nothing is posted again
        gw.restart()
        spend(gw, key.raw, 1, "after restart")
        assert settled(gw, 1)["budget_alerts"]["counts"] == {"delivered": 3}
        assert len(hook.events) == 3


def test_plan_and_tenant_budgets_alert_with_their_own_thresholds(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    with WebhookReceiver() as hook:
        gw = gateway_factory(basic_config(upstreams, tmp_path, extra=ALERTS.format(url=hook.url)))
        team = create_key(gw.config_path, "corp", "--plan", "team")
        other = create_key(gw.config_path, "corp")
        assert spend(gw, team.raw, 5, "team") == [200, 200, 200, 200, 429]
        assert wait_for(lambda: len(hook.events) == 2)
        assert [(e["scope"], e["plan"], e["threshold"]) for e in hook.events] == [
            ("key", "team", 0.25),
            ("key", "team", 1.0),
        ]
        # the tenant's budget ($20) counts every key of corp: 4 + 6 = $10 is 50%
        assert spend(gw, other.raw, 6, "other") == [200] * 6
        assert wait_for(lambda: len(hook.events) == 3)
        tenant = hook.events[2]
        assert (tenant["scope"], tenant["tenant"], tenant["key_id"]) == ("tenant", "corp", None)
        assert tenant["threshold"] == 0.5 and tenant["spent_usd"] == 10
        assert gateway_stats(gw)["budget_alerts"]["counts"] == {"delivered": 3}


def test_without_a_webhook_alerts_are_listed(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory(basic_config(upstreams, tmp_path, extra=ALERTS.format(url="")))
    key = create_key(gw.config_path, "solo", "--budget-usd", "2", "--budget-period", "day")
    spend(gw, key.raw, 2, "solo")
    doc = settled(gw, 2)
    assert wait_for(lambda: gateway_stats(gw)["budget_alerts"]["counts"] == {"listed": 3})
    recent = gateway_stats(gw)["budget_alerts"]["recent"]
    assert [a["threshold"] for a in recent] == [1.0, 0.8, 0.5] and doc["in_flight"] == 0
    assert recent[0]["period"] == "day" and "daily budget of $2.00" in recent[0]["message"]


def thresholds(gw: Gateway) -> list[float]:
    """The thresholds this gateway raised itself (one another replica raised first is listed
    as ``raised_elsewhere``: one event per threshold for the fleet)."""
    recent = gateway_stats(gw)["budget_alerts"]["recent"]
    return [a["threshold"] for a in recent if a["status"] != "raised_elsewhere"]


def test_alerts_read_spend_from_redis_when_governance_is_shared(
    upstreams: UpstreamSet,
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
    redis_server: RedisServer,
    redis_prefix: str,
) -> None:
    """With ``governance.store = "redis"`` the spend an alert compares is the fleet's: two
    replicas on two machines each spend $1 of a $2 daily budget; the first raises 0.5, the
    second 0.8 and 1.0, and each threshold is raised once for the fleet."""
    shared = (
        f'[redis]\nurl = "{redis_server.url}"\nkey_prefix = "{redis_prefix}"\n'
        '[governance]\nstore = "redis"\n'
    )
    a, b = (  # two machines: a data directory (and state.db) each
        gateway_factory(basic_config(upstreams, tmp_path / m, extra=ALERTS.format(url="") + shared))
        for m in ("one", "two")
    )
    key = create_key(a.config_path, "duo", "--budget-usd", "2", "--budget-period", "day")
    assert spend(a, key.raw, 1, "first") == [200]
    assert wait_for(lambda: thresholds(a) == [0.5]), thresholds(a)
    assert spend(b, key.raw, 1, "second") == [200]  # the fleet has spent $2 of $2
    assert wait_for(lambda: thresholds(b) == [1.0, 0.8]), thresholds(b)
    assert spend(a, key.raw, 1, "third") == [429]


def test_an_alert_undelivered_at_shutdown_is_posted_after_the_next_start(
    upstreams: UpstreamSet, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    port = free_port()  # nothing listens there yet: every delivery fails to connect
    url = f"http://127.0.0.1:{port}/hooks/budget"
    extra = ALERTS.format(url=url).replace("backoff_seconds = 0.05", "backoff_seconds = 0.2")
    gw = gateway_factory(basic_config(upstreams, tmp_path, extra=extra))
    key = create_key(gw.config_path, "late", "--budget-usd", "2")
    spend(gw, key.raw, 1, "late")
    assert wait_for(lambda: gateway_stats(gw)["budget_alerts"]["recent"][0]["attempts"] >= 2)
    pending = gateway_stats(gw)["budget_alerts"]
    assert pending["counts"] == {"pending": 1}
    assert pending["recent"][0]["error"] == "ConnectError"
    gw.stop()
    with WebhookReceiver(port=port) as hook:
        gw.start()
        assert wait_for(lambda: len(hook.events) == 1, 10)
        assert hook.events[0]["threshold"] == 0.5 and hook.events[0]["key_id"] == key.id
        assert wait_for(lambda: gateway_stats(gw)["budget_alerts"]["counts"] == {"delivered": 1})
