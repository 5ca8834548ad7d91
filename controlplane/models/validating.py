"""Rules that combine a tenant's fields with each other and with the platform.

Pure: returns problems as (dotted field path, message) so the loader can attach
file and line; an empty list means the tenant is valid on this platform.

The loader also runs these rules on a file that failed its schema (the bad values
left out), so one run lists every problem; a required field that did not parse is
`unknown`, and the rules reading it stay silent rather than judge a stand-in value.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from controlplane.models import quantities
from controlplane.models.platform import PlatformConfig, Tier
from controlplane.models.tenants import Tenant

__all__ = ["PLATFORM", "Problem", "check_tenant"]

PLATFORM = "platform"  # in `unknown`: the platform file did not parse; its rules are skipped
Problem = tuple[str, str]
_Rule = Callable[[Tenant, PlatformConfig], list[Problem]]


def check_tenant(
    tenant: Tenant, platform: PlatformConfig, *, unknown: Collection[str] = ()
) -> list[Problem]:
    """Return every platform-level problem of `tenant` (empty when valid).

    Args:
        tenant: the tenant, possibly with stand-ins for fields that did not parse.
        platform: the platform it must fit.
        unknown: names of `Tenant` fields holding stand-ins (and `PLATFORM` when `platform`
            is itself a stand-in); the rules reading any of them are skipped.
    """
    return [
        problem
        for reads, rule in _RULES
        if reads.isdisjoint(unknown)
        for problem in rule(tenant, platform)
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
    return problems


def _residency(tenant: Tenant, platform: PlatformConfig) -> list[Problem]:
    return [
        (f"tenant.compliance.data_residency[{index}]", f"'{region}' is not a platform region")
        for index, region in enumerate(tenant.compliance.data_residency)
        if region not in platform.regions
    ]


def _compliance(tenant: Tenant, _platform: PlatformConfig) -> list[Problem]:
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


# Each rule with the `Tenant` fields it reads.
_RULES: list[tuple[frozenset[str], _Rule]] = [
    (frozenset({"region", "compliance", PLATFORM}), _region),
    (frozenset({"compliance", PLATFORM}), _residency),
    (frozenset({"tier", "compliance"}), _compliance),
    (frozenset({"tier", "limits", PLATFORM}), _limits),
    (frozenset({"domains", PLATFORM}), _domains),
]
