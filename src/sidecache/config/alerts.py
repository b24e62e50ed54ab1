"""``[alerts]``: where budget alerts go, at which shares of a budget, and how hard to try."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from sidecache.config.base import Base, Positive, Seconds
from sidecache.config.tenants import Threshold


class AlertsConfig(Base, frozen=True):
    """Budget alerts: a JSON event per budget, threshold and period, posted to a webhook."""

    webhook_url: str = ""
    """Where events are POSTed; empty: alerts are only listed in ``/stats``."""
    headers: dict[str, str] = {}
    """Extra headers for the webhook (an ``Authorization`` from ``${ENV}``); never logged."""
    thresholds: list[Threshold] = msgspec.field(default_factory=lambda: [0.5, 0.8, 1.0])
    """Shares of a period's budget that raise an alert, once each per period."""
    max_attempts: Positive = 6
    """Deliveries tried per event before it is marked failed."""
    backoff_seconds: Seconds = 1.0
    """Wait before the second attempt; it doubles after each failure."""
    backoff_max_seconds: Seconds = 60.0
    timeout_seconds: Annotated[float, Meta(gt=0)] = 5.0
    """One delivery attempt's timeout."""
