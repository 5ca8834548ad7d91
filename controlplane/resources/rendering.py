"""GitOps render: every file a tenant needs, as relative path -> text.

Pure and byte-stable: the same tenant and platform always give the same bytes, so a
re-render shows no diff in Git.
"""

from __future__ import annotations

from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant

__all__ = ["tenant_files"]


def tenant_files(tenant: Tenant, platform: PlatformConfig) -> dict[str, str]:
    """Files under `OUT/<tenant-id>/` for this tenant (paths relative to that folder)."""
    del tenant, platform  # each backend adds its files here (kubernetes/, dns.yaml)
    return {}
