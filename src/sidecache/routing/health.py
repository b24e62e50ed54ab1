"""What the router has seen of each target lately: latency, error rate, requests in flight.

The ``fastest`` and ``reliable`` strategies order targets by these estimates; ``/stats`` shows
them per target. Averages are exponentially decayed in time (``half_life`` seconds): a new
observation moves the estimate by at least ``FLOOR`` of the way, more after a quiet spell, so a
burst is tracked and an old figure fades. An error rate also fades while a target gets no
traffic, so a target that failed a while ago is tried again rather than shunned forever (the
circuit breaker, not this estimate, keeps traffic away from a target that is down now).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

FLOOR = 0.1
"""The least weight a new latency gets, however close it follows the previous one: latency
estimates follow about the last ten calls."""
ERROR_FLOOR = 0.02
"""The same for an outcome: error rates of a few percent need about fifty calls to tell apart
(a floor of 0.1 made a 1% target look like 10% after each failure)."""
HORIZON = 3.0
"""Latency samples older than this many half-lives leave the p95 window."""


class Decayed:
    """An exponentially decayed average of observations in time."""

    __slots__ = ("stamp", "value")

    def __init__(self) -> None:
        self.value: float | None = None
        self.stamp = 0.0

    def add(self, x: float, now: float, half_life: float, floor: float = FLOOR) -> None:
        if self.value is None:
            self.value = x
        else:
            alpha = max(floor, 1.0 - 2.0 ** (-(now - self.stamp) / half_life))
            self.value += alpha * (x - self.value)
        self.stamp = now

    def faded(self, now: float, half_life: float) -> float:
        """The value, halved for every ``half_life`` since the last observation (0 if none)."""
        if self.value is None:
            return 0.0
        return float(self.value * 2.0 ** (-max(0.0, now - self.stamp) / half_life))


class _Window:
    """The last N samples no older than ``horizon`` seconds, with a p95 computed once per
    change (old samples must expire: a target that recovered would otherwise keep its bad
    tail until N new requests had gone there)."""

    __slots__ = ("_p95", "horizon", "samples")

    def __init__(self, size: int, horizon: float) -> None:
        self.samples: deque[tuple[float, float]] = deque(maxlen=size)
        self.horizon = horizon
        self._p95: float | None = None

    def add(self, x: float, now: float) -> None:
        self.samples.append((now, x))
        self._p95 = None

    def p95(self, now: float) -> float | None:
        samples = self.samples
        while samples and samples[0][0] < now - self.horizon:
            samples.popleft()
            self._p95 = None
        if self._p95 is None and samples:
            ordered = sorted(x for _, x in samples)
            self._p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
        return self._p95 if samples else None


class TargetHealth:
    """Recent latency (time to first byte and total), error rate and load of one target."""

    def __init__(
        self,
        half_life: float = 30.0,
        window: int = 200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.half_life = half_life
        self.clock = clock
        self.ttft = Decayed()
        self.total = Decayed()
        self.errors = Decayed()
        self._ttft_window = _Window(window, HORIZON * half_life)
        self._total_window = _Window(window, HORIZON * half_life)
        self.in_flight = 0
        self.successes = 0
        self.failures = 0

    # -- observations -----------------------------------------------------------------------

    def begin(self) -> float:
        """A call to this target starts; returns its start time for ``first_byte``."""
        self.in_flight += 1
        return self.clock()

    def end(self) -> None:
        """The call (or its stream) is over, however it ended."""
        self.in_flight = max(0, self.in_flight - 1)

    def first_byte(self, started: float) -> None:
        """The first chunk (or the whole answer) arrived."""
        now = self.clock()
        self.ttft.add(now - started, now, self.half_life)
        self._ttft_window.add(now - started, now)

    def finished(self, started: float) -> None:
        """The answer ended cleanly (its last byte arrived)."""
        now = self.clock()
        self.total.add(now - started, now, self.half_life)
        self._total_window.add(now - started, now)

    def outcome(self, ok: bool) -> None:
        now = self.clock()
        self.errors.add(0.0 if ok else 1.0, now, self.half_life, ERROR_FLOOR)
        if ok:
            self.successes += 1
        else:
            self.failures += 1

    # -- estimates --------------------------------------------------------------------------

    def error_rate(self) -> float:
        """Recent share of failed calls, fading while the target gets no traffic."""
        return self.errors.faded(self.clock(), self.half_life)

    def p95(self, stream: bool = False) -> float | None:
        return (self._ttft_window if stream else self._total_window).p95(self.clock())

    def latency(self, stream: bool = False) -> float | None:
        """Seconds a request can expect to wait: for a stream, until its first byte; else until
        the whole answer. The mean of the decayed average and the p95, so a target that is
        usually quick but often stalls does not look quick. ``None`` before any sample."""
        avg = (self.ttft if stream else self.total).value
        if avg is None:
            return None
        p95 = self.p95(stream)
        return avg if p95 is None else (avg + p95) / 2.0

    def snapshot(self) -> dict[str, Any]:
        """The figures ``/stats`` shows for this target."""
        return {
            "in_flight": self.in_flight,
            "calls": self.successes + self.failures,
            "error_rate": round(self.error_rate(), 4),
            "ttft_ms": _ms(self.ttft.value),
            "ttft_p95_ms": _ms(self.p95(stream=True)),
            "latency_ms": _ms(self.total.value),
            "latency_p95_ms": _ms(self.p95()),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 2)
