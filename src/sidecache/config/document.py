"""``Config``: the whole file, one Struct per section."""

from __future__ import annotations

from sidecache.config.alerts import AlertsConfig
from sidecache.config.base import Base
from sidecache.config.cache import CacheConfig, RedisConfig
from sidecache.config.governance import LimitsConfig, PIIConfig, Price
from sidecache.config.models import ModelAlias, RoutingConfig
from sidecache.config.providers import ProviderConfig
from sidecache.config.server import ObservabilityConfig, ServerConfig
from sidecache.config.shared import GovernanceConfig
from sidecache.config.side_traffic import SideTrafficConfig
from sidecache.config.tenants import PlanConfig, TenantConfig


class Config(Base, frozen=True):
    server: ServerConfig = ServerConfig()
    providers: dict[str, ProviderConfig] = {}
    models: dict[str, ModelAlias] = {}
    routing: RoutingConfig = RoutingConfig()
    cache: CacheConfig = CacheConfig()
    pricing: dict[str, Price] = {}
    limits: LimitsConfig = LimitsConfig()
    pii: PIIConfig = PIIConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    side_traffic: SideTrafficConfig = SideTrafficConfig()
    tenants: dict[str, TenantConfig] = {}
    plans: dict[str, PlanConfig] = {}
    alerts: AlertsConfig = AlertsConfig()
    redis: RedisConfig = RedisConfig()
    """The Redis server shared parts use (``[cache.redis]`` is its older name)."""
    governance: GovernanceConfig = GovernanceConfig()
    passthrough_models: bool = False
    """Route a model name that is no alias to the first provider unchanged (env mode)."""
