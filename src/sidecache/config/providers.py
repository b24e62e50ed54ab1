"""``[providers.NAME]``: one upstream API endpoint, its credentials and timeouts."""

from __future__ import annotations

from typing import Literal

from sidecache.config.base import Base, Positive, Seconds


class Timeouts(Base, frozen=True):
    """Per-provider timeouts: connect, wait for the first byte, and the whole request."""

    connect: Seconds = 5.0
    first_byte: Seconds = 60.0
    total: Seconds = 600.0


class ProviderConfig(Base, frozen=True):
    """One upstream API endpoint and its credentials."""

    kind: Literal["openai", "anthropic"] = "openai"
    base_url: str = ""
    api_key: str = ""
    headers: dict[str, str] = {}
    timeouts: Timeouts = Timeouts()
    max_connections: Positive = 100
    anthropic_version: str = "2023-06-01"
