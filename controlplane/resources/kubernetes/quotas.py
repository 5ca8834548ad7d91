"""Compute limits: ResourceQuota, LimitRange and the tier's PriorityClass.

The quota is the tier profile narrowed by the tenant's own `limits` (validation already
refused overrides above the tier's maximum). NodePort and LoadBalancer services are
always zero: tenants are reached through the shared ingress gateway only; ephemeral
storage (node-local scratch space) and the storage all claims may request are bounded
too, so one tenant cannot fill its nodes' disks or the storage backend. A second,
scoped quota forbids pods in any other tier's (or the system's) priority classes, so a
tenant cannot out-rank its neighbours.
"""

from __future__ import annotations

from controlplane.models import quantities
from controlplane.models.platform import PlatformConfig, TierProfile
from controlplane.models.tenants import Tenant
from controlplane.resources.kubernetes import objects
from controlplane.resources.kubernetes.objects import Json, Manifest

__all__ = [
    "LIMIT_RANGE",
    "PRIORITY_GUARD",
    "QUOTA",
    "SYSTEM_PRIORITY_CLASSES",
    "hard_limits",
    "limit_range",
    "priority_class",
    "priority_guard",
    "resource_quota",
]

QUOTA = "tenant-quota"
PRIORITY_GUARD = "tenant-priority-guard"
LIMIT_RANGE = "tenant-limits"
SYSTEM_PRIORITY_CLASSES = ("system-cluster-critical", "system-node-critical")


def _smaller(tier_value: str, override: str | None) -> str:
    if override is None or quantities.parse(tier_value) <= quantities.parse(override):
        return tier_value
    return override


def hard_limits(tenant: Tenant, platform: PlatformConfig) -> dict[str, str]:
    """`spec.hard` of the tenant's quota: every key a tenant could use to grow.

    Values are canonical quantities (`0.5` -> `500m`), as the API server stores them.
    """
    quota = platform.tiers[tenant.tier].quota
    own = tenant.limits
    limits_cpu = own.cpu or quota.limits_cpu
    limits_memory = own.memory or quota.limits_memory
    sizes = {
        "requests.cpu": _smaller(quota.requests_cpu, limits_cpu),
        "requests.memory": _smaller(quota.requests_memory, limits_memory),
        "limits.cpu": limits_cpu,
        "limits.memory": limits_memory,
        "requests.ephemeral-storage": _smaller(
            quota.requests_ephemeral_storage, quota.limits_ephemeral_storage
        ),
        "limits.ephemeral-storage": quota.limits_ephemeral_storage,
        "requests.storage": quota.requests_storage,
        "pods": str(own.pods or quota.pods),
        "services": str(quota.services),
        "persistentvolumeclaims": str(quota.persistentvolumeclaims),
        "services.nodeports": "0",
        "services.loadbalancers": "0",
    }
    return {key: quantities.canonical(value) for key, value in sizes.items()}


def resource_quota(tenant: Tenant, platform: PlatformConfig, *, component: str) -> Manifest:
    """The namespace's ResourceQuota."""
    hard: dict[str, Json] = dict(hard_limits(tenant, platform))
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": objects.tenant_metadata(
            QUOTA, tenant=tenant, platform=platform, component=component
        ),
        "spec": {"hard": hard},
    }


def priority_guard(tenant: Tenant, platform: PlatformConfig, *, component: str) -> Manifest:
    """A quota of zero pods in every priority class except the tenant's tier class."""
    own = platform.tiers[tenant.tier].priority_class
    others = sorted(
        ({p.priority_class for p in platform.tiers.values()} - {own}) | set(SYSTEM_PRIORITY_CLASSES)
    )
    values: list[Json] = list(others)
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": objects.tenant_metadata(
            PRIORITY_GUARD, tenant=tenant, platform=platform, component=component
        ),
        "spec": {
            "hard": {"pods": "0"},
            "scopeSelector": {
                "matchExpressions": [
                    {"scopeName": "PriorityClass", "operator": "In", "values": values}
                ]
            },
        },
    }


def _sizes(cpu: str, memory: str) -> Json:
    return {"cpu": quantities.canonical(cpu), "memory": quantities.canonical(memory)}


def limit_range(tenant: Tenant, platform: PlatformConfig, *, component: str) -> Manifest:
    """Defaults for containers that declare no requests/limits, capped at the quota."""
    settings = platform.kubernetes
    hard = hard_limits(tenant, platform)
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": objects.tenant_metadata(
            LIMIT_RANGE, tenant=tenant, platform=platform, component=component
        ),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": _sizes(settings.default_cpu, settings.default_memory),
                    "defaultRequest": _sizes(
                        settings.default_request_cpu, settings.default_request_memory
                    ),
                    "max": {"cpu": hard["limits.cpu"], "memory": hard["limits.memory"]},
                }
            ]
        },
    }


def priority_class(profile: TierProfile, tier: str) -> Manifest:
    """The tier's PriorityClass: platform-owned and cluster-scoped, shared by its tenants."""
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {
            "name": profile.priority_class,
            "labels": {
                objects.MANAGED_BY_LABEL: objects.MANAGED_BY,
                objects.COMPONENT_LABEL: "platform",
                objects.TIER_LABEL: tier,
            },
        },
        "value": profile.priority,
        # No `globalDefault: false`: the server does not store a false default (omitempty),
        # so sending it would read back as a difference on every compare.
        "preemptionPolicy": "PreemptLowerPriority",
        "description": f"Pods of {tier} tenants (managed by tenantctl)",
    }
