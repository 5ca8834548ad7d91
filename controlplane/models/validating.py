"""Rules that combine a tenant's fields with each other and with the platform.

Pure: returns problems as (dotted field path, message) so the loader can attach
file and line; an empty list means the tenant is valid on this platform.
"""

from __future__ import annotations

from controlplane.models import quantities
from controlplane.models.platform import PlatformConfig, Tier
from controlplane.models.tenants import Tenant

__all__ = ["Problem", "check_tenant"]

Problem = tuple[str, str]


def check_tenant(tenant: Tenant, platform: PlatformConfig) -> list[Problem]:
    """Return every platform-level problem of `tenant` (empty when valid)."""
    return [
        *_region(tenant, platform),
        *_compliance(tenant),
        *_limits(tenant, platform),
        *_domains(tenant, platform),
    ]


def _region(tenant: Tenant, platform: PlatformConfig) -> list[Problem]:
    problems: list[Problem] = []
    if tenant.region not in platform.regions:
        problems.append(
            (
                "tenant.region",
                f"'{tenant.region}' is not a platform region "
                f"(platform.yaml regions: {', '.join(platform.regions)})",
            )
        )
    residency = tenant.compliance.data_residency
    if residency and tenant.region not in residency:
        problems.append(
            (
                "tenant.region",
                f"'{tenant.region}' is outside compliance.data_residency "
                f"({', '.join(residency)}): move the tenant or widen the residency list",
            )
        )
    for index, region in enumerate(residency):
        if region not in platform.regions:
            problems.append(
                (
                    f"tenant.compliance.data_residency[{index}]",
                    f"'{region}' is not a platform region",
                )
            )
    return problems


def _compliance(tenant: Tenant) -> list[Problem]:
    if tenant.compliance.pci_dss_level == 1 and tenant.tier is not Tier.PREMIUM:
        return [
            (
                "tenant.compliance.pci_dss_level",
                f"PCI-DSS level 1 requires tier premium (tenant is {tenant.tier.value})",
            )
        ]
    return []


def _limits(tenant: Tenant, platform: PlatformConfig) -> list[Problem]:
    profile = platform.tiers[tenant.tier]
    limits = tenant.limits
    checks = [
        ("cpu", limits.cpu, profile.max_cpu),
        ("memory", limits.memory, profile.max_memory),
        ("pods", None if limits.pods is None else str(limits.pods), str(profile.max_pods)),
    ]
    return [
        (
            f"tenant.limits.{name}",
            f"{value} exceeds the {tenant.tier.value} tier maximum of {ceiling}",
        )
        for name, value, ceiling in checks
        if value is not None and quantities.parse(value) > quantities.parse(ceiling)
    ]


def _domains(tenant: Tenant, platform: PlatformConfig) -> list[Problem]:
    base = platform.base_domain
    return [
        (
            f"tenant.domains.custom[{index}]",
            f"'{name}' is under the platform's base domain {base}: use domains.subdomain for that",
        )
        for index, name in enumerate(tenant.domains.custom)
        if name == base or name.endswith("." + base)
    ]
