"""The three kinds of governance state, each behind one small interface, and where they live.

    Keys    who may call: virtual keys stored hashed, answered from memory on the request path
    Limits  requests and tokens per minute per key
    Spend   budgets and spend per key and tenant, with the reservation of in-flight cost

``governance.store`` picks the implementation of all three through ``GOVERNANCE_BACKENDS``, so
the gate never asks which one it has: ``sqlite`` (``state.db`` and in-process token buckets, one
machine) or ``redis`` (the ``[redis]`` server, every replica sharing one truth). Each backend
module is imported only when chosen.

What may wait and what may not: ``Keys`` reads are synchronous (from memory, on the event loop);
its writes (create, revoke, rotate) may block and are called from a worker thread. ``Limits``
and ``Spend`` admit a request with an ``await`` (a shared backend makes one round trip, bounded
by the Redis timeout) and settle it synchronously (a shared backend sends that in the
background, so settling never waits on the network).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sidecache.config import Config
    from sidecache.governance.budget import Reservation
    from sidecache.governance.keys import KeyRecord, Period

__all__ = [
    "GOVERNANCE_BACKENDS",
    "Governance",
    "Keys",
    "Limits",
    "Spend",
    "open_governance",
    "open_keys",
]


class Keys(Protocol):
    """Virtual keys. Reads answer from memory; writes may block (call them from a thread)."""

    def lookup(self, raw: str) -> KeyRecord | None:
        """The active record a raw key opens (a rotated-out secret during its grace period),
        or None: unknown, revoked, or past its grace."""
        ...

    def known(self, raw: str) -> bool:
        """Whether this secret was ever issued (so a refused one is a 401, never anonymous)."""
        ...

    def ever_created(self) -> bool: ...

    def get(self, key_id: str) -> KeyRecord | None: ...

    def count_active(self) -> int: ...

    def create(
        self,
        tenant: str,
        models: list[str] | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: float | None = None,
        budget_period: Period | None = None,
        regions: list[str] | None = None,
        plan: str | None = None,
    ) -> tuple[str, KeyRecord]:
        """A new key: the raw secret (shown once, never stored) and its record."""
        ...

    def revoke(self, key: str) -> KeyRecord:
        """Revoke by full key, id or displayed prefix; every replica refuses it within 1 s."""
        ...

    def rotate(self, key_id: str, grace_seconds: float) -> tuple[str, KeyRecord]:
        """A new secret; the current one keeps working for ``grace_seconds``."""
        ...

    def close(self) -> None: ...

    def list(self, *, include_revoked: bool = True) -> list[KeyRecord]:
        """All keys, oldest first (last here: the name hides ``list`` in the class body)."""
        ...


class Limits(Protocol):
    """Requests/min and tokens/min per key."""

    async def admit(self, key: KeyRecord, est_tokens: int) -> None:
        """Charge one request and its estimated tokens, or raise ``RateLimited``."""
        ...

    def settle(self, key: KeyRecord, est_tokens: int, used_tokens: int, *, hit: bool) -> None:
        """Replace the estimate by what the request used (hits are free of tokens unless
        ``limits.hits_count_tokens``). Never waits."""
        ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class Spend(Protocol):
    """Budgets per key and tenant, per UTC day or month, and what was spent."""

    async def check(self, key: KeyRecord) -> None:
        """Raise ``BudgetExceeded`` if a budget of the key or its tenant is used up."""
        ...

    async def reserve(self, key: KeyRecord, usd: float) -> Reservation:
        """Admit a request estimated at ``usd`` and hold that much of its budgets until
        ``settle``: N concurrent requests cannot all pass a check none has paid for yet."""
        ...

    def settle(self, reservation: Reservation | None, key_id: str, tenant: str, usd: float) -> None:
        """Replace the reservation by the real cost and record the spend. Never waits."""
        ...

    async def spent(self, scope: str, name: str, period: Period) -> float:
        """USD spent this period by a key (``scope="key"``, name = its id) or a tenant."""
        ...

    async def claim_alert(self, slot: str, threshold: float, period: Period) -> bool | None:
        """Claim the one budget alert of ``slot`` (budget and period) at ``threshold`` for the
        whole fleet: True if this replica raises it, False if another did; None when the store
        does not coordinate replicas (the alert's own ``state.db`` claim decides then)."""
        ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


@dataclass
class Governance:
    """The state the gate works with; ``start`` and ``aclose`` bracket the gateway's life."""

    keys: Keys
    limits: Limits
    spend: Spend

    async def start(self) -> None:
        await self.limits.start()
        await self.spend.start()

    async def aclose(self) -> None:
        await self.spend.aclose()
        await self.limits.aclose()
        self.keys.close()


GOVERNANCE_BACKENDS: dict[str, str] = {
    "sqlite": "sidecache.governance.local",
    "redis": "sidecache.governance.redis_state",
}
"""``governance.store`` -> the module that opens it (``open_keys(cfg)`` and
``open_governance(cfg)``); a new backend is one more entry."""


def _backend(cfg: Config) -> object:
    return importlib.import_module(GOVERNANCE_BACKENDS[cfg.governance.store])


def open_keys(cfg: Config) -> Keys:
    """The key store alone (the ``sidecache keys`` command). Blocking: it may connect."""
    keys: Keys = _backend(cfg).open_keys(cfg)  # type: ignore[attr-defined]
    return keys


def open_governance(cfg: Config, data_dir: str | Path | None = None) -> Governance:
    """Keys, limits and spend as ``governance.store`` says. Blocking: it may connect."""
    opened: Governance = _backend(cfg).open_governance(  # type: ignore[attr-defined]
        cfg, Path(data_dir if data_dir is not None else cfg.server.data_dir)
    )
    return opened
