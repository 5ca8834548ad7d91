"""Tenant lifecycle commands: create one tenant, suspend it, resume it.

Every one of them runs a registered flow through `operations.run` (lease, fenced
records, audit), like `apply` does. `create` is onboarding for a tenant not yet
recorded; `suspend`/`resume` work from what was recorded (spec, platform config and
render folder of the tenant's last operation), so they need no file.

`LifecycleSession` is a `Session` whose flows also get the tenant-data driver (the
initial import, the app role's login switch, row-visibility checks) and the data
sources (a local folder or S3); `open_session` opens one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from controlplane import flows
from controlplane.config.loading import TenantSource
from controlplane.drivers import datasources, postgres_data
from controlplane.engine.operating import Outcome
from controlplane.engine.stores import TenantRegistry
from controlplane.errors import ConflictError, NotFoundError
from controlplane.flows import onboarding, suspending
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.service import operations, planning
from controlplane.service.sessions import Session
from controlplane.state import database
from controlplane.state.store import Store, default_actor

__all__ = [
    "CREATE",
    "RESUME",
    "SUSPEND",
    "LifecycleSession",
    "Outcome",
    "create",
    "open_session",
    "resume",
    "step_names",
    "suspend",
]

CREATE = onboarding.KIND
SUSPEND = suspending.SUSPEND
RESUME = suspending.RESUME
# Which recorded statuses each command accepts (a crashed run of the same command resumes).
_SUSPENDABLE = frozenset({"active", "suspending", "suspended"})
_RESUMABLE = frozenset({"suspended", "suspending", "resuming"})


@dataclasses.dataclass
class LifecycleSession(Session):
    """A session whose flows can import data and switch the app role's login."""

    def dependencies(
        self, platform: PlatformConfig, registry: TenantRegistry | None = None
    ) -> flows.Dependencies:
        """The session's drivers plus tenant data and data sources."""
        return dataclasses.replace(
            super().dependencies(platform, registry),
            tenant_data=self.tenant_data(platform),
            data_sources=self._cached("data-sources", datasources.DataSources),
        )

    def tenant_data(self, platform: PlatformConfig) -> postgres_data.TenantData:
        """The tenant databases of the platform, as their app roles and admins see them."""
        _, databases = self.database_drivers(platform)
        return postgres_data.TenantData(databases)


def open_session(*, actor: str | None = None, **options: Any) -> LifecycleSession:
    """Connect to the configured state store (embedded by default) and migrate it."""
    store = Store(database.connect(), actor=actor or default_actor())
    return LifecycleSession(store, **options)


def step_names(session: Session, kind: str, platform: PlatformConfig) -> list[str]:
    """The steps flow `kind` runs on this platform, in order (for progress displays)."""
    return [str(step.name) for step in session.steps(kind, platform)]


def create(session: Session, source: TenantSource, platform: PlatformConfig) -> Outcome:
    """Onboard a tenant that is not recorded yet; ConflictError (exit 4) if it is."""
    tenant_id = source.tenant.id
    try:
        row = session.store.get_tenant(tenant_id)
    except NotFoundError:
        return operations.run(session, CREATE, source, platform)
    msg = (
        f"tenant '{tenant_id}' already exists (status {row['status']}, from {row['source_file']})"
        f" — use `tenantctl apply -f {source.file}` to change it or finish its onboarding"
    )
    raise ConflictError(msg)


def suspend(session: Session, tenant_id: str, out_dir: Path | None = None) -> Outcome:
    """Take the tenant's traffic off (ingress, DNS, app-role login); data untouched.

    Renders into `out_dir`, else into the folder the tenant's last operation used.
    """
    return _run_recorded(session, tenant_id, SUSPEND, out_dir)


def resume(session: Session, tenant_id: str, out_dir: Path | None = None) -> Outcome:
    """Bring a suspended tenant back: login, network, DNS, health checks, `active`."""
    return _run_recorded(session, tenant_id, RESUME, out_dir)


def recorded(session: Session, tenant_id: str) -> tuple[TenantSource, PlatformConfig, Path]:
    """The tenant as recorded: its spec, the platform config and render folder last used."""
    row = session.store.get_tenant(tenant_id)
    source = TenantSource(Tenant.model_validate(row["spec"]), str(row["source_file"]), "")
    platform = planning.recorded_platform(session, tenant_id)
    out_dir = session.store.operation_context(tenant_id).get("out_dir")
    return source, platform, Path(str(out_dir)) if out_dir else session.out_dir


def _run_recorded(session: Session, tenant_id: str, kind: str, out_dir: Path | None) -> Outcome:
    accepted = _SUSPENDABLE if kind == SUSPEND else _RESUMABLE
    status = session.store.get_tenant(tenant_id)["status"]
    if status not in accepted:
        msg = (
            f"tenant '{tenant_id}' is {status}: `tenantctl {kind}` needs it "
            f"{' or '.join(sorted(accepted))}"
            + (" — finish its apply first" if kind == SUSPEND else "")
        )
        raise ConflictError(msg)
    source, platform, last_out = recorded(session, tenant_id)
    return operations.run(session.at(out_dir or last_out), kind, source, platform)
