"""The objects of each Kubernetes step, and the files `tenantctl render` writes.

Each step owns one component (`compute`, `config`, `network`); its objects carry the
component label, so each step lists, compares and prunes only its own objects.
PriorityClasses are platform objects: every tier's class on every cluster, never pruned
with a tenant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.resources.kubernetes import (
    configs,
    istio,
    namespaces,
    networkpolicies,
    objects,
    placement,
    quotas,
    rbac,
)
from controlplane.resources.kubernetes.objects import Json, Manifest

__all__ = [
    "COMPONENTS",
    "COMPUTE",
    "CONFIG",
    "KINDS",
    "KUSTOMIZATION",
    "NETWORK",
    "PLATFORM",
    "PLATFORM_DIR",
    "component_file",
    "compute",
    "config",
    "desired",
    "kustomization",
    "network",
    "platform_files",
    "priority_classes",
    "tenant_files",
]

COMPUTE = "compute"
CONFIG = "config"
NETWORK = "network"
COMPONENTS = (COMPUTE, CONFIG, NETWORK)
PLATFORM = "platform"
# Every kind a component may hold: listed (and pruned) even when none is desired now.
KINDS: dict[str, tuple[tuple[str, str], ...]] = {
    COMPUTE: (
        ("v1", "Namespace"),
        ("v1", "ResourceQuota"),
        ("v1", "LimitRange"),
        ("v1", "ServiceAccount"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ),
    CONFIG: (("v1", "ConfigMap"), ("v1", "Secret"), ("external-secrets.io/v1", "ExternalSecret")),
    NETWORK: (
        ("networking.k8s.io/v1", "NetworkPolicy"),
        (istio.API_VERSION, "PeerAuthentication"),
        (istio.API_VERSION, "AuthorizationPolicy"),
    ),
    PLATFORM: (("scheduling.k8s.io/v1", "PriorityClass"),),
}
KUSTOMIZATION = "kustomization.yaml"
# Tenant ids are DNS labels, so a leading underscore can never clash with one.
PLATFORM_DIR = "_platform"


def compute(tenant: Tenant, platform: PlatformConfig) -> list[Manifest]:
    """Namespace, quotas, limit range and the workload identity."""
    c = COMPUTE
    return [
        namespaces.namespace(tenant, platform, component=c),
        quotas.resource_quota(tenant, platform, component=c),
        quotas.priority_guard(tenant, platform, component=c),
        quotas.limit_range(tenant, platform, component=c),
        rbac.default_service_account(tenant, platform, component=c),
        rbac.service_account(tenant, platform, component=c),
        rbac.role(tenant, platform, component=c, secret_name=configs.DATABASE_SECRET),
        rbac.role_binding(tenant, platform, component=c),
    ]


def config(
    tenant: Tenant, platform: PlatformConfig, credentials: Mapping[str, str] | None = None
) -> list[Manifest]:
    """The ConfigMap, plus a Secret (live, with `credentials`) or an ExternalSecret."""
    c = CONFIG
    secret = (
        configs.external_secret(tenant, platform, component=c)
        if credentials is None
        else configs.database_secret(tenant, platform, component=c, credentials=credentials)
    )
    return [configs.config_map(tenant, platform, component=c), secret]


def network(tenant: Tenant, platform: PlatformConfig) -> list[Manifest]:
    """NetworkPolicies, and Istio policies where the tier is in the mesh."""
    c = NETWORK
    found = networkpolicies.network_policies(tenant, platform, component=c)
    if placement.uses_istio(tenant):
        found.append(istio.peer_authentication(tenant, platform, component=c))
        found.append(istio.authorization_policy(tenant, platform, component=c))
    return found


def desired(
    tenant: Tenant,
    platform: PlatformConfig,
    component: str,
    credentials: Mapping[str, str] | None = None,
) -> list[Manifest]:
    """The objects of one component."""
    if component == COMPUTE:
        return compute(tenant, platform)
    if component == CONFIG:
        return config(tenant, platform, credentials)
    if component == NETWORK:
        return network(tenant, platform)
    msg = f"unknown Kubernetes component '{component}'"
    raise ValueError(msg)


def priority_classes(platform: PlatformConfig) -> list[Manifest]:
    """Every tier's PriorityClass (platform-owned, cluster-scoped)."""
    return [
        quotas.priority_class(profile, tier.value)
        for tier, profile in sorted(platform.tiers.items(), key=lambda item: item[0].value)
    ]


def component_file(component: str) -> str:
    """File name of a component inside `<tenant>/kubernetes/`."""
    return f"{component}.yaml"


def kustomization(resources: Sequence[str]) -> str:
    """A kustomization.yaml listing `resources` (sorted, so the bytes are stable)."""
    listed: list[Json] = [str(r) for r in sorted(resources)]
    return objects.to_yaml(
        [
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": listed,
            }
        ]
    )


def tenant_files(tenant: Tenant, platform: PlatformConfig) -> dict[str, str]:
    """`kubernetes/<component>.yaml` + `kubernetes/kustomization.yaml` (render mode)."""
    files = {component_file(c): objects.to_yaml(desired(tenant, platform, c)) for c in COMPONENTS}
    files[KUSTOMIZATION] = kustomization(list(files))
    return {f"kubernetes/{name}": text for name, text in files.items()}


def platform_files(platform: PlatformConfig) -> dict[str, str]:
    """Platform objects every cluster needs (the tier PriorityClasses), for render mode."""
    name = component_file(PLATFORM)
    return {
        f"kubernetes/{name}": objects.to_yaml(priority_classes(platform)),
        f"kubernetes/{KUSTOMIZATION}": kustomization([name]),
    }
