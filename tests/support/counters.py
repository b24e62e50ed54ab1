"""Waiting on what the gateway itself reports, never on a sleep.

A test that asserts something happened (or did not) after an action waits until the gateway's
own counters say the action is accounted (``/stats``: requests settled, nothing in flight),
with a deadline that only bounds a failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from support.gateway import Gateway

__all__ = ["gateway_stats", "metric", "settled", "wait_for"]


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` passes (its last value)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def gateway_stats(gw: Gateway, admin_key: str | None = None) -> dict[str, Any]:
    """``GET /stats`` (with the admin key when the gateway has one)."""
    with gw.http(admin_key) as http:
        r = http.get("/stats")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def metric(gw: Gateway, admin_key: str | None, name: str, **labels: str) -> float | None:
    """The value of the first ``/metrics`` sample called ``name`` with these labels (None if
    there is none)."""
    with gw.http(admin_key) as http:
        text = http.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def settled(
    gw: Gateway, requests: int, admin_key: str | None = None, timeout: float = 10.0
) -> dict[str, Any]:
    """``/stats`` once at least ``requests`` requests are accounted and none is in flight."""
    doc: dict[str, Any] = {}

    def done() -> bool:
        nonlocal doc
        doc = gateway_stats(gw, admin_key)
        return bool(doc["totals"]["requests"] >= requests and doc.get("in_flight", 0) == 0)

    assert wait_for(done, timeout), f"not settled: {doc.get('totals')}, {doc.get('in_flight')}"
    return doc
