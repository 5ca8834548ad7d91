"""The tenant's runtime configuration and its database credentials.

The ConfigMap carries what the application reads at start (features, branding,
integrations, AI settings) as compact, key-sorted JSON so a re-render is byte-stable.
Credentials never reach a file: live mode applies a Secret straight to the API server,
render mode writes an ExternalSecret that points at the secret manager entry instead.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.resources.kubernetes import objects
from controlplane.resources.kubernetes.objects import Json, Manifest

__all__ = [
    "CONFIG_MAP",
    "DATABASE_SECRET",
    "config_map",
    "database_secret",
    "external_secret",
    "secret_key",
]

CONFIG_MAP = "tenant-config"
DATABASE_SECRET = "tenant-database"  # noqa: S105 - an object name, not a secret


def _compact(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def config_map(tenant: Tenant, platform: PlatformConfig, *, component: str) -> Manifest:
    """Features, branding, integrations and AI settings for the tenant's workloads."""
    data: dict[str, Json] = {
        "tenant.id": tenant.id,
        "tenant.name": tenant.name,
        "tenant.tier": tenant.tier.value,
        "tenant.region": tenant.region,
        "tenant.host": f"{tenant.subdomain}.{platform.base_domain}",
        "features.json": _compact(tenant.features),
        "branding.json": _compact(tenant.branding.model_dump(mode="json", exclude_none=True)),
        "integrations.json": _compact(tenant.integrations),
        "ai.json": _compact(tenant.ai.model_dump(mode="json", exclude_none=True)),
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": objects.tenant_metadata(
            CONFIG_MAP, tenant=tenant, platform=platform, component=component
        ),
        "data": data,
    }


def database_secret(
    tenant: Tenant,
    platform: PlatformConfig,
    *,
    component: str,
    credentials: Mapping[str, str],
) -> Manifest:
    """Live mode only: the credentials as a Secret (base64 `data`, as the server stores it)."""
    data: dict[str, Json] = {
        key: base64.b64encode(value.encode()).decode() for key, value in sorted(credentials.items())
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": objects.tenant_metadata(
            DATABASE_SECRET, tenant=tenant, platform=platform, component=component
        ),
        "type": "Opaque",
        "data": data,
    }


def secret_key(tenant: Tenant, platform: PlatformConfig) -> str:
    """Key of the tenant's database credentials in the platform's secret manager."""
    return f"{platform.kubernetes.secret_key_prefix}/{tenant.id}/database"


def external_secret(tenant: Tenant, platform: PlatformConfig, *, component: str) -> Manifest:
    """Render mode: a reference the External Secrets Operator resolves in-cluster."""
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": objects.tenant_metadata(
            DATABASE_SECRET, tenant=tenant, platform=platform, component=component
        ),
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {
                "kind": "ClusterSecretStore",
                "name": platform.kubernetes.secret_store,
            },
            "target": {"name": DATABASE_SECRET, "creationPolicy": "Owner"},
            "dataFrom": [{"extract": {"key": secret_key(tenant, platform)}}],
        },
    }
