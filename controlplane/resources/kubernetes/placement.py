"""Where a tenant's objects run: which cluster, which nodes, whether Istio guards it.

Standard tenants share the cluster and its nodes; enterprise tenants share the
cluster but are pinned to their own node pool (the namespace enforces a node selector
and the only tolerations pods may carry); premium tenants get a cluster of their own.
"""

from __future__ import annotations

import json

from controlplane.errors import ConfigError, SourceLocation
from controlplane.models.platform import PlatformConfig, Tier
from controlplane.models.tenants import Tenant

__all__ = [
    "NODE_SELECTOR_ANNOTATION",
    "SHARED_CLUSTER",
    "TOLERATIONS_ALLOWED_ANNOTATION",
    "TOLERATIONS_DEFAULT_ANNOTATION",
    "cluster_for",
    "has_dedicated_nodes",
    "namespace_annotations",
    "uses_istio",
]

SHARED_CLUSTER = "shared"
# Enforced by the PodNodeSelector and PodTolerationRestriction admission plugins.
NODE_SELECTOR_ANNOTATION = "scheduler.alpha.kubernetes.io/node-selector"
TOLERATIONS_DEFAULT_ANNOTATION = "scheduler.alpha.kubernetes.io/defaultTolerations"
TOLERATIONS_ALLOWED_ANNOTATION = "scheduler.alpha.kubernetes.io/tolerationsWhitelist"


def cluster_for(tenant: Tenant, platform: PlatformConfig) -> str:
    """Name (a key of `platform.clusters`) of the cluster the tenant's objects go to.

    Raises:
        ConfigError: a premium tenant has no dedicated cluster in platform.yaml.
    """
    if tenant.tier is not Tier.PREMIUM:
        return SHARED_CLUSTER
    name = platform.kubernetes.dedicated_clusters.get(tenant.id, f"premium-{tenant.id}")
    if name not in platform.clusters:
        where = SourceLocation("platform.yaml", None, f"platform.clusters.{name}")
        msg = (
            f"premium tenant '{tenant.id}' needs a dedicated cluster '{name}' "
            "(add it under platform.clusters with its kube context, or map the tenant "
            "in platform.kubernetes.dedicated_clusters)"
        )
        raise ConfigError([(where, msg)])
    return name


def has_dedicated_nodes(tenant: Tenant) -> bool:
    """Enterprise tenants run on their own node pool inside the shared cluster."""
    return tenant.tier is Tier.ENTERPRISE


def uses_istio(tenant: Tenant) -> bool:
    """Enterprise and premium tenants get mTLS STRICT and an allow-list policy."""
    return tenant.tier in (Tier.ENTERPRISE, Tier.PREMIUM)


def namespace_annotations(tenant: Tenant, platform: PlatformConfig) -> dict[str, str]:
    """Namespace annotations pinning every pod to the tenant's node pool (enterprise)."""
    if not has_dedicated_nodes(tenant):
        return {}
    pool = platform.node_pool
    tolerations = json.dumps(
        [
            {
                "effect": "NoSchedule",
                "key": pool.taint_key,
                "operator": "Equal",
                "value": tenant.id,
            }
        ],
        separators=(",", ":"),
    )
    return {
        NODE_SELECTOR_ANNOTATION: f"{pool.label_key}={tenant.id}",
        TOLERATIONS_DEFAULT_ANNOTATION: tolerations,
        TOLERATIONS_ALLOWED_ANNOTATION: tolerations,
    }
