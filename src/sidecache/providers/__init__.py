"""Upstream adapters, one module per API, chosen by ``ProviderConfig.kind``."""

from __future__ import annotations

from collections.abc import Callable

from sidecache.config import ProviderConfig
from sidecache.providers.anthropic import Anthropic
from sidecache.providers.base import Provider
from sidecache.providers.openai_compat import OpenAICompatible

ADAPTERS: dict[str, Callable[[str, ProviderConfig], Provider]] = {
    "openai": OpenAICompatible,
    "anthropic": Anthropic,
}


def build(name: str, cfg: ProviderConfig) -> Provider:
    """The adapter for one configured provider."""
    return ADAPTERS[cfg.kind](name, cfg)


__all__ = ["ADAPTERS", "Provider", "build"]
