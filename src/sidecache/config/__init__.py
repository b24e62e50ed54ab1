"""Configuration: one TOML file decoded into msgspec Structs, one module per section.

Strings may hold ``${VAR}`` or ``${VAR:-default}``; they are replaced from the environment
before decoding so secrets never need to sit in the file. Every field has a default and is
documented in README.md; unknown fields are rejected so a typo fails at start with its path.
The public names are re-exported here: ``from sidecache.config import Config, load``.
"""

from sidecache.config.alerts import AlertsConfig
from sidecache.config.base import Base, Positive, Seconds, Unit
from sidecache.config.cache import CacheConfig, EmbedderConfig, RedisConfig, VerifierConfig
from sidecache.config.document import Config
from sidecache.config.governance import LimitsConfig, PIIConfig, Price, TenantBudget
from sidecache.config.loading import SERVER_ENV, from_dict, from_env, load, server_from_env
from sidecache.config.models import (
    BreakerConfig,
    HealthConfig,
    ModelAlias,
    RetryConfig,
    RoutingConfig,
    Target,
    Variant,
)
from sidecache.config.providers import ProviderConfig, Timeouts
from sidecache.config.server import ObservabilityConfig, ServerConfig
from sidecache.config.shared import GovernanceConfig
from sidecache.config.side_traffic import Shadow, SideTrafficConfig
from sidecache.config.tenants import PlanConfig, TenantConfig

__all__ = [
    "SERVER_ENV",
    "AlertsConfig",
    "Base",
    "BreakerConfig",
    "CacheConfig",
    "Config",
    "EmbedderConfig",
    "GovernanceConfig",
    "HealthConfig",
    "LimitsConfig",
    "ModelAlias",
    "ObservabilityConfig",
    "PIIConfig",
    "PlanConfig",
    "Positive",
    "Price",
    "ProviderConfig",
    "RedisConfig",
    "RetryConfig",
    "RoutingConfig",
    "Seconds",
    "ServerConfig",
    "Shadow",
    "SideTrafficConfig",
    "Target",
    "TenantBudget",
    "TenantConfig",
    "Timeouts",
    "Unit",
    "Variant",
    "VerifierConfig",
    "from_dict",
    "from_env",
    "load",
    "server_from_env",
]
