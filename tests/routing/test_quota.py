"""A target's own limits: a minute's allowance that refills continuously."""

from __future__ import annotations

from sidecache.routing.quota import Quota


def test_requests_per_minute() -> None:
    now = [0.0]
    q = Quota(rpm=2, tpm=None, clock=lambda: now[0])
    for _ in range(2):
        assert q.wait(0) == 0
        q.take(0)
    assert q.wait(0) == 30.0  # one request refills in 60/2 s
    now[0] = 30.0
    assert q.wait(0) == 0


def test_tokens_per_minute_are_settled_with_real_usage() -> None:
    now = [0.0]
    q = Quota(rpm=None, tpm=600, clock=lambda: now[0])
    q.take(500)
    assert q.wait(200) == 10.0  # 100 tokens missing at 10 per second
    q.settle(500, 100)  # the answer used 100: 400 come back
    assert q.wait(200) == 0
    assert q.snapshot() == {"tpm_free": 500.0}


def test_a_call_larger_than_the_allowance_fits_a_full_bucket() -> None:
    q = Quota(rpm=None, tpm=100)
    assert q.wait(1000) == 0
    q.take(1000)
    assert q.wait(1) > 0
