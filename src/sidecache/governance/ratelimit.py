"""Per-key token buckets: requests per minute and tokens per minute.

Each limit is a bucket holding up to one minute's allowance that refills continuously, so a key
may burst up to its limit and then proceeds at the steady rate. The tokens-per-minute bucket is
charged with an *estimate* of the request's tokens before the call (the real count is unknown
until the answer ends) and corrected with ``adjust_tokens`` afterwards.

In-process and synchronous with no awaits, so calls from the event loop are atomic. (A shared
backend for many replicas would keep the same interface over Redis.)
"""

from __future__ import annotations

import time

from sidecache.config import LimitsConfig
from sidecache.errors import RateLimited


class _Bucket:
    """A continuously refilling bucket of ``capacity`` units per minute."""

    __slots__ = ("capacity", "level", "stamp")

    def __init__(self, capacity: float, now: float) -> None:
        self.capacity = capacity
        self.level = capacity
        self.stamp = now

    def refill(self, capacity: float, now: float) -> None:
        """Top up for the time elapsed; a changed limit applies from now on."""
        if capacity != self.capacity:
            self.level = min(self.level, capacity)
            self.capacity = capacity
        elapsed = now - self.stamp
        if elapsed > 0:
            self.level = min(self.capacity, self.level + elapsed * self.capacity / 60.0)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` units are available (0 if they are now)."""
        missing = amount - self.level
        return 0.0 if missing <= 0 else missing * 60.0 / self.capacity


class RateLimiter:
    """Token buckets keyed by key id; limits come with each call (from the ``KeyRecord``)."""

    def __init__(self, limits: LimitsConfig | None = None) -> None:
        self._limits = limits if limits is not None else LimitsConfig()
        self._requests: dict[str, _Bucket] = {}
        self._tokens: dict[str, _Bucket] = {}

    def check_request(
        self,
        key_id: str,
        rpm: int | None,
        tpm: int | None,
        est_tokens: int,
        now: float | None = None,
    ) -> None:
        """Admit one request estimated at ``est_tokens`` tokens, or raise ``RateLimited``.

        Nothing is charged when the request is refused. A request larger than the whole
        per-minute token allowance is admitted once the bucket is full (it then runs into
        debt) rather than never.
        """
        if not rpm and not tpm:
            return
        t = time.monotonic() if now is None else now
        req = self._bucket(self._requests, key_id, rpm, t) if rpm else None
        tok = self._bucket(self._tokens, key_id, tpm, t) if tpm else None
        if req is not None:
            wait = req.wait_for(1.0)
            if wait > 0:
                raise RateLimited(
                    f"rate limit of {rpm} requests per minute reached for this key;"
                    f" retry in {wait:.1f}s",
                    retry_after=wait,
                )
        if tok is not None:
            wait = tok.wait_for(min(float(est_tokens), tok.capacity))
            if wait > 0:
                raise RateLimited(
                    f"rate limit of {tpm} tokens per minute reached for this key"
                    f" (this request needs about {est_tokens}); retry in {wait:.1f}s",
                    retry_after=wait,
                )
        if req is not None:
            req.level -= 1.0
        if tok is not None:
            tok.level -= est_tokens

    def adjust_tokens(
        self, key_id: str, tpm: int | None, delta: int, now: float | None = None
    ) -> None:
        """Charge (positive) or refund (negative) ``delta`` tokens once real usage is known."""
        if not tpm or delta == 0:
            return
        t = time.monotonic() if now is None else now
        bucket = self._bucket(self._tokens, key_id, tpm, t)
        bucket.level = min(bucket.capacity, bucket.level - delta)

    def settle(
        self,
        key_id: str,
        tpm: int | None,
        est_tokens: int,
        actual_tokens: int,
        *,
        hit: bool,
        now: float | None = None,
    ) -> None:
        """Replace the estimate charged by ``check_request`` with what the request really used.

        A cache hit is free of tokens unless ``limits.hits_count_tokens`` is set.
        """
        used = actual_tokens if (not hit or self._limits.hits_count_tokens) else 0
        self.adjust_tokens(key_id, tpm, used - est_tokens, now)

    def forget(self, key_id: str) -> None:
        """Drop a key's buckets (after revocation)."""
        self._requests.pop(key_id, None)
        self._tokens.pop(key_id, None)

    @staticmethod
    def _bucket(table: dict[str, _Bucket], key_id: str, capacity: int, now: float) -> _Bucket:
        bucket = table.get(key_id)
        if bucket is None:
            bucket = table[key_id] = _Bucket(float(capacity), now)
        else:
            bucket.refill(float(capacity), now)
        return bucket
