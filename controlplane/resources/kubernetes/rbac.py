"""The identity tenant workloads run as, and the little it may do.

Everything is namespaced (a Role, never a ClusterRole): workloads may read their own
configuration and discover their own pods and services, and read exactly one Secret,
their database credentials. No write verbs, no wildcard, no rights on RBAC, quota,
limit range, network policy or namespace objects, and no escalate/bind/impersonate.

Neither the workloads' ServiceAccount nor the namespace's `default` one mounts an API
token into pods: a pod that needs one asks for it (`automountServiceAccountToken: true`
or a projected token volume), so a compromised container holds no credentials by default.
"""

from __future__ import annotations

from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.resources.kubernetes import objects
from controlplane.resources.kubernetes.objects import Json, Manifest

__all__ = [
    "DEFAULT_SERVICE_ACCOUNT",
    "WORKLOAD",
    "default_service_account",
    "role",
    "role_binding",
    "rules",
    "service_account",
]

WORKLOAD = "tenant-workload"
# Created in every namespace by the controller manager; we only switch its token off.
DEFAULT_SERVICE_ACCOUNT = "default"
_READ = ["get", "list", "watch"]


def rules(secret_name: str) -> list[Json]:
    """The workload Role's rules."""
    return [
        {
            "apiGroups": [""],
            "resources": ["configmaps", "endpoints", "pods", "services"],
            "verbs": list(_READ),
        },
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": [secret_name],
            "verbs": ["get"],
        },
    ]


def _meta(tenant: Tenant, platform: PlatformConfig, component: str) -> Manifest:
    return objects.tenant_metadata(WORKLOAD, tenant=tenant, platform=platform, component=component)


def _tokenless(meta: Manifest) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta,
        "automountServiceAccountToken": False,
    }


def service_account(tenant: Tenant, platform: PlatformConfig, *, component: str) -> Manifest:
    """The workloads' ServiceAccount (no token mounted unless a pod asks for one)."""
    return _tokenless(_meta(tenant, platform, component))


def default_service_account(
    tenant: Tenant, platform: PlatformConfig, *, component: str
) -> Manifest:
    """The namespace's `default` ServiceAccount, which pods get when they name none."""
    return _tokenless(
        objects.tenant_metadata(
            DEFAULT_SERVICE_ACCOUNT, tenant=tenant, platform=platform, component=component
        )
    )


def role(tenant: Tenant, platform: PlatformConfig, *, component: str, secret_name: str) -> Manifest:
    """The workloads' Role, confined to the tenant's namespace."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(tenant, platform, component),
        "rules": rules(secret_name),
    }


def role_binding(tenant: Tenant, platform: PlatformConfig, *, component: str) -> Manifest:
    """Binds the Role to the ServiceAccount, both in the tenant's namespace."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(tenant, platform, component),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": WORKLOAD},
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": WORKLOAD,
                "namespace": objects.namespace_name(tenant, platform),
            }
        ],
    }
