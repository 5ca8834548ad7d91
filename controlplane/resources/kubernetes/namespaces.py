"""The tenant's Namespace: identity labels, Pod Security `restricted`, placement.

Pod Security Admission reads the `pod-security.kubernetes.io/*` labels; all three
modes are `restricted`, so a privileged pod is refused (enforce), recorded (audit) and
reported to the client (warn).
"""

from __future__ import annotations

from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.resources.kubernetes import objects, placement
from controlplane.resources.kubernetes.objects import Json, Manifest

__all__ = ["POD_SECURITY_LEVEL", "POD_SECURITY_MODES", "namespace"]

POD_SECURITY_LEVEL = "restricted"
POD_SECURITY_MODES = ("enforce", "audit", "warn")


def namespace(tenant: Tenant, platform: PlatformConfig, *, component: str) -> Manifest:
    """The tenant's Namespace."""
    security = {}
    for mode in POD_SECURITY_MODES:
        security[f"pod-security.kubernetes.io/{mode}"] = POD_SECURITY_LEVEL
        security[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    if placement.has_dedicated_nodes(tenant):
        security[platform.node_pool.label_key] = tenant.id
    meta = objects.metadata(
        objects.namespace_name(tenant, platform),
        tenant=tenant,
        component=component,
        labels=security,
    )
    annotations: dict[str, Json] = dict(placement.namespace_annotations(tenant, platform))
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
