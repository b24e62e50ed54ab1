"""Audits of hits: what they found, and what they may spend.

An audit is a sampled semantic hit asked again upstream once the client has its answer; a
*near miss* is a sampled lookup whose best candidate fell under the serving threshold, whose
fresh answer (the client's own) is compared with the candidate's stored one at no upstream
cost. Both label one observation, wrong or right. ``AuditBook`` keeps their counts per alias,
and the side spend per UTC day with its cap: an audit reserves its estimated cost before it
goes, and is skipped (and counted) when the alias's ``audit_budget_usd`` for the day would be
passed; the reservation becomes the real cost when it returns. Shadow spend is kept here too,
uncapped, so that every dollar of side traffic is counted in one place and never in a
tenant's budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sidecache.governance.budget import period_key

__all__ = ["AliasAudits", "AuditBook", "today"]


def today(now: float | None = None) -> str:
    return period_key("day", time.time() if now is None else now)


@dataclass
class AliasAudits:
    audited: int = 0
    """Served semantic hits asked again upstream and compared."""
    disagreed: int = 0
    near_misses: int = 0
    """Candidates under the threshold compared with the client's fresh answer."""
    near_misses_wrong: int = 0
    skipped_budget: int = 0
    failed: int = 0
    """Audits whose upstream call failed (nothing learned, the cost still counted)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "hits_audited": self.audited,
            "audit_disagreements": self.disagreed,
            "near_misses_checked": self.near_misses,
            "near_misses_wrong": self.near_misses_wrong,
            "audits_skipped_budget": self.skipped_budget,
            "audits_failed": self.failed,
        }


class AuditBook:
    """Audit counts per alias, and side spend per (UTC day, kind, alias)."""

    def __init__(self) -> None:
        self.aliases: dict[str, AliasAudits] = {}
        self.spend: dict[tuple[str, str, str], float] = {}
        """(day, kind, alias) -> USD; ``kind`` is ``audit`` or ``shadow``."""
        self.total: dict[tuple[str, str], float] = {}
        """(kind, alias) -> USD since start (what ``/metrics`` counts)."""
        self._reserved: dict[str, float] = {}

    def alias(self, alias: str) -> AliasAudits:
        book = self.aliases.get(alias)
        if book is None:
            book = self.aliases[alias] = AliasAudits()
        return book

    def load(self, day: str, spent: dict[tuple[str, str], float]) -> None:
        """The day's spend as the journal has it (after a restart)."""
        for (kind, alias), usd in spent.items():
            self.spend[(day, kind, alias)] = self.spend.get((day, kind, alias), 0.0) + usd

    def spent_today(self, kind: str, alias: str) -> float:
        return self.spend.get((today(), kind, alias), 0.0)

    def reserve(self, alias: str, usd: float, budget: float) -> bool:
        """Hold ``usd`` of today's audit budget; False (nothing held) when it would not fit."""
        held = self._reserved.get(alias, 0.0)
        if self.spent_today("audit", alias) + held + usd > budget:
            self.alias(alias).skipped_budget += 1
            return False
        self._reserved[alias] = held + usd
        return True

    def release(self, alias: str, usd: float) -> None:
        left = self._reserved.get(alias, 0.0) - usd
        if left > 1e-12:
            self._reserved[alias] = left
        else:
            self._reserved.pop(alias, None)

    def add(self, kind: str, alias: str, usd: float) -> str:
        """Count ``usd`` of side spend; returns the day it was counted on."""
        day = today()
        self.spend[(day, kind, alias)] = self.spend.get((day, kind, alias), 0.0) + usd
        self.total[(kind, alias)] = self.total.get((kind, alias), 0.0) + usd
        for stale in [k for k in self.spend if k[0] < day]:
            del self.spend[stale]
        return day
