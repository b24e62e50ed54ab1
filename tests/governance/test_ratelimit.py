from __future__ import annotations

import pytest

from sidecache.config import LimitsConfig
from sidecache.errors import RateLimited
from sidecache.governance.ratelimit import RateLimiter


def test_no_limits_means_no_checks() -> None:
    rl = RateLimiter()
    for _ in range(1000):
        rl.check_request("k", None, None, 10_000, now=0.0)


def test_requests_per_minute_burst_then_refill() -> None:
    rl = RateLimiter()
    for _ in range(6):
        rl.check_request("k", 6, None, 0, now=100.0)
    with pytest.raises(RateLimited) as exc:
        rl.check_request("k", 6, None, 0, now=100.0)
    err = exc.value
    assert err.status == 429 and err.code == "rate_limit_exceeded"
    assert "6 requests per minute" in err.message
    assert err.retry_after == pytest.approx(10.0)  # one request every 10 s
    with pytest.raises(RateLimited):
        rl.check_request("k", 6, None, 0, now=109.0)
    rl.check_request("k", 6, None, 0, now=110.0)
    # other keys are independent
    rl.check_request("other", 6, None, 0, now=110.0)


def test_tokens_per_minute() -> None:
    rl = RateLimiter()
    rl.check_request("k", None, 1000, 600, now=0.0)
    with pytest.raises(RateLimited) as exc:
        rl.check_request("k", None, 1000, 600, now=0.0)
    assert "1000 tokens per minute" in exc.value.message
    assert exc.value.retry_after == pytest.approx(12.0)  # 200 missing at 1000/60 per second
    rl.check_request("k", None, 1000, 600, now=12.0)


def test_refused_request_charges_nothing() -> None:
    rl = RateLimiter()
    rl.check_request("k", 100, 1000, 1000, now=0.0)
    for _ in range(5):
        with pytest.raises(RateLimited):
            rl.check_request("k", 100, 1000, 500, now=0.0)
    # the five refusals did not use up requests: 99 remain
    for _ in range(99):
        rl.check_request("k", 100, None, 0, now=0.0)
    with pytest.raises(RateLimited):
        rl.check_request("k", 100, None, 0, now=0.0)


def test_oversized_request_passes_when_bucket_is_full_then_debt() -> None:
    rl = RateLimiter()
    rl.check_request("k", None, 100, 250, now=0.0)  # bigger than the whole minute
    with pytest.raises(RateLimited) as exc:
        rl.check_request("k", None, 100, 10, now=30.0)
    # 150 tokens of debt + 10 needed at 100/60 per second, 30 s already elapsed
    assert exc.value.retry_after == pytest.approx((150 + 10 - 50) * 0.6)


def test_adjust_and_settle() -> None:
    rl = RateLimiter(LimitsConfig(hits_count_tokens=False))
    rl.check_request("k", None, 1000, 900, now=0.0)
    rl.settle("k", 1000, 900, 100, hit=False, now=0.0)  # real usage was 100: refund 800
    rl.check_request("k", None, 1000, 850, now=0.0)
    rl.settle("k", 1000, 850, 850, hit=True, now=0.0)  # a hit costs no tokens
    rl.check_request("k", None, 1000, 900, now=0.0)
    rl.adjust_tokens("k", 1000, 500, now=0.0)  # more than estimated
    with pytest.raises(RateLimited):
        rl.check_request("k", None, 1000, 1, now=0.0)
    rl.adjust_tokens("k", 1000, -(10**9), now=0.0)  # a refund never overfills the bucket
    rl.check_request("k", None, 1000, 1000, now=0.0)
    with pytest.raises(RateLimited):
        rl.check_request("k", None, 1000, 1, now=0.0)


def test_hits_count_tokens_when_configured() -> None:
    rl = RateLimiter(LimitsConfig(hits_count_tokens=True))
    rl.check_request("k", None, 1000, 100, now=0.0)
    rl.settle("k", 1000, 100, 900, hit=True, now=0.0)
    with pytest.raises(RateLimited):
        rl.check_request("k", None, 1000, 200, now=0.0)


def test_lowered_limit_applies_at_once_and_forget() -> None:
    rl = RateLimiter()
    rl.check_request("k", 100, None, 0, now=0.0)
    rl.check_request("k", 2, None, 0, now=0.0)  # capacity now 2: level 99 clipped to 2, then 1
    rl.check_request("k", 2, None, 0, now=0.0)
    with pytest.raises(RateLimited):
        rl.check_request("k", 2, None, 0, now=0.0)
    rl.forget("k")
    rl.check_request("k", 2, None, 0, now=0.0)
