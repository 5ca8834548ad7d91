"""The `Tenant` custom resource as a source of tenant files (`tenantctl crd`).

Argo CD or Flux sync tenant files as `Tenant` objects: `spec` is what a tenant file
holds under `tenant:`, `metadata.name` its id. `tenant_of` reads an object back as a
tenant file (validated exactly like one, errors naming `tenants.tenantctl.io/<name>`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from controlplane.config import loading
from controlplane.config.loading import TenantSource
from controlplane.errors import ConfigError, SourceLocation
from controlplane.models.platform import PlatformConfig
from controlplane.resources.kubernetes import tenant_crd

__all__ = ["definition", "tenant_of", "to_object"]


def definition() -> dict[str, Any]:
    """The `Tenant` CustomResourceDefinition (`tenantctl crd`)."""
    return dict(tenant_crd.definition())


def to_object(source: TenantSource) -> dict[str, Any]:
    """The Tenant object of a tenant file (`spec` is what the file has under `tenant:`)."""
    return dict(tenant_crd.to_object(source.tenant))


def tenant_of(obj: Mapping[str, Any], platform: PlatformConfig) -> TenantSource:
    """The Tenant object as a tenant file (`tenant: <spec>`), validated like one.

    Raises:
        ConfigError: the spec is not a valid tenant (file `tenants.tenantctl.io/<name>`).
    """
    name = str((obj.get("metadata") or {}).get("name") or "")
    file = f"{tenant_crd.CRD_NAME}/{name}"
    text = yaml.safe_dump({"tenant": obj.get("spec") or {}}, sort_keys=False)
    source = loading.load_tenant_text(text, file, platform)
    if source.tenant.id != name:
        where = SourceLocation(file, None, "metadata.name")
        raise ConfigError([(where, f"must equal spec.id '{source.tenant.id}'")])
    return source
