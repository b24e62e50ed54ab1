"""A provider's own limits for one target (``rpm``, ``tpm``): the router never exceeds them.

Two continuously refilling buckets, each holding one minute's allowance. A call takes one
request and its estimated tokens (prompt + expected completion) when it is sent; once the
answer's real usage is known the token charge is corrected. ``wait`` says how long until a call
of a given size fits, so the router can route around a saturated target, or wait for the first
one to free up. Synchronous with no awaits: atomic on the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class _Bucket:
    __slots__ = ("capacity", "level", "stamp")

    def __init__(self, capacity: float, now: float) -> None:
        self.capacity = capacity
        self.level = capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        elapsed = now - self.stamp
        if elapsed > 0:
            self.level = min(self.capacity, self.level + elapsed * self.capacity / 60.0)
        self.stamp = now

    def wait(self, amount: float) -> float:
        missing = min(amount, self.capacity) - self.level
        return 0.0 if missing <= 0 else missing * 60.0 / self.capacity


class Quota:
    """Requests and tokens per minute one target may still take."""

    def __init__(
        self,
        rpm: int | None,
        tpm: int | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpm, self.tpm = rpm, tpm
        self.clock = clock
        now = clock()
        self._requests = _Bucket(float(rpm), now) if rpm else None
        self._tokens = _Bucket(float(tpm), now) if tpm else None

    def wait(self, tokens: int) -> float:
        """Seconds until a call of ``tokens`` fits (0: it fits now). A call larger than the
        whole per-minute allowance fits once the bucket is full (it then runs into debt)."""
        now = self.clock()
        waits = [0.0]
        if self._requests is not None:
            self._requests.refill(now)
            waits.append(self._requests.wait(1.0))
        if self._tokens is not None:
            self._tokens.refill(now)
            waits.append(self._tokens.wait(float(tokens)))
        return max(waits)

    def take(self, tokens: int) -> None:
        """Charge one call (after ``wait`` said it fits)."""
        if self._requests is not None:
            self._requests.level -= 1.0
        if self._tokens is not None:
            self._tokens.level -= tokens

    def settle(self, charged: int, used: int) -> None:
        """Replace a call's estimated tokens with what it really used."""
        if self._tokens is not None and used != charged:
            bucket = self._tokens
            bucket.refill(self.clock())
            bucket.level = min(bucket.capacity, bucket.level + charged - used)

    def snapshot(self) -> dict[str, float | None]:
        now = self.clock()
        out: dict[str, float | None] = {}
        for name, bucket in (("rpm", self._requests), ("tpm", self._tokens)):
            if bucket is not None:
                bucket.refill(now)
                out[f"{name}_free"] = round(max(0.0, bucket.level), 1)
        return out
