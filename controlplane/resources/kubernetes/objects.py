"""The shape every rendered object shares: identity, labels, YAML text.

Labels are the inventory: the driver lists and prunes by them, so they must be on
every object the control plane creates, and nothing else may carry them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TypeAlias

import yaml

from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant

__all__ = [
    "COMPONENT_LABEL",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "TENANT_LABEL",
    "TIER_LABEL",
    "Json",
    "Manifest",
    "identity",
    "metadata",
    "namespace_name",
    "tenant_metadata",
    "to_yaml",
]

Json: TypeAlias = str | int | float | bool | list["Json"] | dict[str, "Json"] | None
Manifest: TypeAlias = dict[str, Json]

TENANT_LABEL = "tenantctl.io/tenant"
TIER_LABEL = "tenantctl.io/tier"
COMPONENT_LABEL = "tenantctl.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "tenantctl"


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Safe dumper that never writes anchors/aliases (GitOps tools read plain YAML)."""

    def ignore_aliases(self, data: object) -> bool:
        del data
        return True


def namespace_name(tenant: Tenant, platform: PlatformConfig) -> str:
    """The tenant's namespace (same name on the shared and on a dedicated cluster)."""
    return f"{platform.kubernetes.namespace_prefix}{tenant.id}"


def metadata(
    name: str,
    *,
    tenant: Tenant,
    component: str,
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Manifest:
    """ObjectMeta carrying the inventory labels (tenant, component, managed-by)."""
    meta: Manifest = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = {
        MANAGED_BY_LABEL: MANAGED_BY,
        COMPONENT_LABEL: component,
        TENANT_LABEL: tenant.id,
        TIER_LABEL: tenant.tier.value,
        **(labels or {}),
    }
    return meta


def tenant_metadata(
    name: str, *, tenant: Tenant, platform: PlatformConfig, component: str
) -> Manifest:
    """ObjectMeta of a namespaced object in the tenant's namespace."""
    return metadata(
        name, tenant=tenant, component=component, namespace=namespace_name(tenant, platform)
    )


def identity(manifest: Mapping[str, Json]) -> tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name): what makes two manifests the same object."""
    meta = manifest.get("metadata")
    if not isinstance(meta, dict):
        msg = f"{manifest.get('kind')} has no metadata"
        raise TypeError(msg)
    return (
        str(manifest["apiVersion"]),
        str(manifest["kind"]),
        str(meta.get("namespace") or ""),
        str(meta["name"]),
    )


def to_yaml(manifests: Iterable[Mapping[str, Json]]) -> str:
    """A multi-document YAML stream; byte-stable for the same input."""
    docs: Sequence[Mapping[str, Json]] = list(manifests)
    text: str = yaml.dump_all(
        docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096
    )
    return text
