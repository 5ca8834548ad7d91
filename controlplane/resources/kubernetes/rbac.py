"""The identity tenant workloads run as, and the little it may do.

Everything is namespaced (a Role, never a ClusterRole): workloads may read their own
configuration and discover their own pods and services, and read exactly one Secret,
their database credentials. No write verbs, no wildcard, no rights on RBAC, quota,
limit range, network policy or namespace objects, and no escalate/bind/impersonate.
"""

from __future__ import annotations

from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.resources.kubernetes import objects
from controlplane.resources.kubernetes.objects import Json, Manifest

__all__ = ["WORKLOAD", "role", "role_binding", "rules", "service_account"]

WORKLOAD = "tenant-workload"
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


def service_account(tenant: Tenant, platform: PlatformConfig, *, component: str) -> Manifest:
    """The workloads' ServiceAccount."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(tenant, platform, component),
    }


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
