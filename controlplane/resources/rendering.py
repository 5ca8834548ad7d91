"""GitOps render: every file a tenant needs, as relative path -> text.

Pure and byte-stable: the same tenant and platform always give the same bytes, so a
re-render shows no diff in Git.
"""

from __future__ import annotations

from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.resources import dns
from controlplane.resources.kubernetes import bundles as kubernetes_bundles

__all__ = ["PLATFORM_DIR", "platform_files", "tenant_files"]

# Platform-wide files go to `OUT/_platform/` (no tenant id can start with `_`).
PLATFORM_DIR = kubernetes_bundles.PLATFORM_DIR


def tenant_files(tenant: Tenant, platform: PlatformConfig) -> dict[str, str]:
    """Files under `OUT/<tenant-id>/` for this tenant (paths relative to that folder)."""
    files: dict[str, str] = {}
    files.update(kubernetes_bundles.tenant_files(tenant, platform))
    files[dns.DNS_FILE] = dns.render(tenant, platform)
    return files


def platform_files(platform: PlatformConfig) -> dict[str, str]:
    """Files under `OUT/_platform/`: objects every cluster needs once (PriorityClasses)."""
    return kubernetes_bundles.platform_files(platform)
