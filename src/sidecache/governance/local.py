"""``governance.store = "sqlite"``: one machine, zero setup.

Keys and spend in ``<data_dir>/state.db`` (``KeyStore``, ``BudgetTracker``), rate limits in
this process's token buckets (``RateLimiter``). Everything here is synchronous and await-free,
so each admission is atomic on the event loop; the adapters only give it the async shape of
the ``Limits`` and ``Spend`` interfaces.
"""

from __future__ import annotations

from pathlib import Path

from sidecache.config import Config, LimitsConfig
from sidecache.governance.backends import Governance
from sidecache.governance.budget import BudgetTracker, Period, Reservation
from sidecache.governance.keys import KeyRecord, KeyStore
from sidecache.governance.ratelimit import RateLimiter

__all__ = ["LocalLimits", "LocalSpend", "open_governance", "open_keys"]


class LocalLimits:
    """``Limits`` over this process's token buckets."""

    def __init__(self, limits: LimitsConfig | None = None) -> None:
        self.limiter = RateLimiter(limits)

    async def admit(self, key: KeyRecord, est_tokens: int) -> None:
        self.admit_now(key, est_tokens)

    def admit_now(self, key: KeyRecord, est_tokens: int) -> None:
        """``admit`` without the await (a shared backend falls back to it)."""
        self.limiter.check_request(key.id, key.rpm, key.tpm, est_tokens)

    def settle(self, key: KeyRecord, est_tokens: int, used_tokens: int, *, hit: bool) -> None:
        self.limiter.settle(key.id, key.tpm, est_tokens, used_tokens, hit=hit)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class LocalSpend:
    """``Spend`` over ``BudgetTracker`` (``state.db``, flushed every ``budget_flush_seconds``)."""

    def __init__(self, data_dir: str | Path, limits: LimitsConfig | None = None) -> None:
        self.tracker = BudgetTracker(data_dir, limits)

    async def check(self, key: KeyRecord) -> None:
        self.tracker.check(key)

    async def reserve(self, key: KeyRecord, usd: float) -> Reservation:
        return self.tracker.reserve(key, usd)

    def settle(self, reservation: Reservation | None, key_id: str, tenant: str, usd: float) -> None:
        self.tracker.settle(reservation, key_id, tenant, usd)

    async def spent(self, scope: str, name: str, period: Period) -> float:
        return self.tracker.spent(scope, name, period)  # type: ignore[arg-type]

    async def claim_alert(self, slot: str, threshold: float, period: Period) -> bool | None:
        return None  # one machine: state.db's claim is the fleet's

    async def start(self) -> None:
        await self.tracker.start()

    async def aclose(self) -> None:
        await self.tracker.aclose()


def open_keys(cfg: Config) -> KeyStore:
    return KeyStore(cfg.server.data_dir)


def open_governance(cfg: Config, data_dir: Path) -> Governance:
    return Governance(
        keys=KeyStore(data_dir),
        limits=LocalLimits(cfg.limits),
        spend=LocalSpend(data_dir, cfg.limits),
    )
