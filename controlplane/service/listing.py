"""Read-only views for the HTTP API: pages of tenants, one operation, the audit log,
readiness, and diff/verify of a recorded tenant (no tenant file needed).

The CLI's equivalents live in `queries` and `planning`; these add what a remote caller
needs: filters, cursors, and lookups by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.config.loading import TenantSource
from controlplane.errors import ControlPlaneError
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.service import lifecycle, planning, queries
from controlplane.service.sessions import Session
from controlplane.state import lookups
from controlplane.state.lookups import AuditFilter
from controlplane.steps import migration

__all__ = [
    "AuditFilter",
    "Page",
    "Readiness",
    "audit",
    "diff",
    "operation",
    "readiness",
    "tenants",
    "verify",
]


@dataclass(frozen=True)
class Page:
    """One page of rows and the cursor of the next one (None on the last page)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def tenants(
    session: Session,
    *,
    tier: str | None = None,
    status: str | None = None,
    after: str = "",
    limit: int = 100,
) -> Page:
    """Recorded tenants by id, filtered; `after` is the previous page's cursor."""
    rows = lookups.tenant_page(
        session.store.engine, {"tier": tier, "status": status}, after=after, limit=limit + 1
    )
    more = len(rows) > limit
    items = queries.marked(session, rows[:limit])
    return Page(items, items[-1]["id"] if more and items else None)


def operation(session: Session, operation_id: str) -> dict[str, Any]:
    """One operation with its steps so far, `step_names` (every step its flow runs, in
    order: a remote progress display shows the ones not started yet as pending) and
    `summary` (what a finished tier change moved, as `tenantctl upgrade` reports it).

    Raises:
        NotFoundError: unknown operation id.
    """
    found = lookups.operation(session.store.engine, operation_id)
    recorded = found.pop("context", None) or {}
    platform = (
        PlatformConfig.model_validate(recorded["platform"])
        if "platform" in recorded
        else planning.recorded_platform(session, found["tenant_id"])
    )
    found["step_names"] = lifecycle.step_names(session, found["kind"], platform)
    found["summary"] = _summary(found["steps"])
    return found


def _summary(steps: list[dict[str, Any]]) -> str:
    """What the CLI prints after the status line: a tier change's rows moved and freeze."""
    for step in steps:
        if step["name"] == migration.RESUME and step["status"] == "done":
            return migration.moved(step["outputs"])
    return ""


def audit(session: Session, wanted: AuditFilter) -> list[dict[str, Any]]:
    """Audit entries, newest first."""
    return lookups.audit_page(session.store.engine, wanted)


@dataclass(frozen=True)
class Readiness:
    """Whether this replica can serve: each check and what it found."""

    ready: bool
    checks: dict[str, str]


def readiness(session: Session) -> Readiness:
    """The state store answers and its schema is at the newest migration."""
    try:
        current, head = lookups.schema_revision(session.store.engine)
    except ControlPlaneError as exc:
        return Readiness(False, {"state_store": exc.message, "migrations": "unknown"})
    migrations = "current" if current == head else f"at {current}, newest is {head}"
    return Readiness(current == head, {"state_store": "ok", "migrations": migrations})


def _recorded_source(session: Session, tenant_id: str) -> TenantSource:
    row = session.store.get_tenant(tenant_id)
    return TenantSource(Tenant.model_validate(row["spec"]), row["source_file"] or "", "")


def diff(session: Session, tenant_id: str) -> list[dict[str, str]]:
    """Field-level differences of a recorded tenant's live resources (database, Kubernetes,
    DNS), against its recorded spec, platform config and render folder.

    Raises:
        NotFoundError: the tenant is not recorded.
    """
    source = _recorded_source(session, tenant_id)
    platform = planning.recorded_platform(session, tenant_id)
    here = planning.recorded_session(session, tenant_id)
    return [
        {"tenant": plan.tenant_id, **change}
        for plan in planning.diff(here, [source], platform)
        for change in plan.changes
    ]


def verify(session: Session, tenant_id: str) -> list[str]:
    """Problems of a recorded tenant's resources (`planning.verify`)."""
    return planning.verify(session, tenant_id)
