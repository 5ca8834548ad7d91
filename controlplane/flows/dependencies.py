"""What the steps of every flow talk to: the drivers, behind the engine's Protocols."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from controlplane.engine.running import utc_now
from controlplane.engine.stores import TenantRegistry
from controlplane.steps import database, dns, exporting, importing, migration, retention
from controlplane.steps import kubernetes as kubernetes_steps

__all__ = ["Dependencies"]


@dataclass(frozen=True)
class Dependencies:
    """Each backend's steps run when its driver is given (drivers satisfy the Protocols)."""

    registry: TenantRegistry
    # The database step runs when both are given (Terraform workspaces + isolation checks).
    provisioner: database.Provisioner | None = None
    isolation: database.IsolationChecker | None = None
    # Kubernetes (server-side apply, or files in render mode): compute, config and network
    # run when given; `passwords` lets live mode write the tenant's database Secret.
    kubernetes: kubernetes_steps.KubernetesBackend | None = None
    passwords: kubernetes_steps.PasswordSource | None = None
    # Cloudflare (live) or the dns.yaml writer (render); the dns step runs when given.
    dns_provider: dns.DnsProvider | None = None
    # The tenant's own data (import, login switch, row visibility) and where initial data
    # comes from: the `import` step runs when both are given; suspend/resume need the first.
    tenant_data: importing.TenantData | None = None
    data_sources: importing.DataSource | None = None
    # Offboarding (export, delete, purge, restore): pg_dump, the export store and the
    # state store's exports and lifecycle dates; `clock` dates exports and purges.
    dumps: exporting.Dumper | None = None
    exports: exporting.ExportStore | None = None
    records: retention.LifecycleRecords | None = None
    clock: Callable[[], datetime] = utc_now
    # A tier change moves the tenant's tables (replication); the flow needs both.
    tables: migration.TenantTables | None = None
    mover: migration.DataMover | None = None
