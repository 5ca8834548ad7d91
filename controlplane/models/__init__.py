"""Pure data models: tenants, platform, operation records (pydantic v2 / dataclasses)."""

from controlplane.models.platform import PlatformConfig, Tier
from controlplane.models.tenants import Tenant, TenantId

__all__ = ["PlatformConfig", "Tenant", "TenantId", "Tier"]
