"""Read-only views of recorded state: tenants, one tenant in detail, the audit log."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from controlplane.errors import ControlPlaneError
from controlplane.models.operations import StepName
from controlplane.models.platform import DriverMode, PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.resources import dns as dns_resources
from controlplane.service import planning
from controlplane.service.sessions import Session
from controlplane.steps import dns as dns_step

__all__ = ["audit", "describe", "get", "list_tenants", "marked"]


def get(session: Session, tenant_id: str) -> dict[str, Any]:
    """One recorded tenant; NotFoundError if unknown."""
    return marked(session, [session.store.get_tenant(tenant_id)])[0]


def list_tenants(session: Session) -> list[dict[str, Any]]:
    """Every recorded tenant."""
    return marked(session, session.store.list_tenants())


def marked(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with their GitOps marks: `pending-deletion` (file gone), `paused` (observe only)."""
    controls = session.reconciles().controls([r["id"] for r in rows])
    for row in rows:
        control = controls.get(row["id"])
        marks = []
        if control is not None and control.pending_deletion_since is not None:
            marks.append("pending-deletion")
        if control is not None and control.paused:
            marks.append("paused")
        if row["spec"].get("lifecycle", {}).get("management") == "observe":
            marks.append("observe")
        row["marks"] = marks
    return rows


def describe(
    session: Session, tenant_id: str, platform: PlatformConfig | None = None
) -> dict[str, Any]:
    """A tenant with its hostnames, DNS status, newest operations and the newest one's steps.

    Each step shows its attempts: steps run at least once, and a crash between a side
    effect and its record makes the next run apply the step again (it converges).
    """
    row = get(session, tenant_id)
    operations = session.store.operations_of(tenant_id, limit=5)
    for operation in operations:
        operation.pop("context", None)  # the recorded platform config: large, shown by verify
    steps = []
    if operations:
        records = session.store.load_steps(operations[0]["id"])
        steps = [
            {
                "name": r.name,
                "status": r.status.value,
                "attempts": r.attempts,
                "skipped": r.skipped,
                "last_error": r.last_error,
                "next_attempt_at": r.next_attempt_at,
                "finished_at": r.finished_at,
            }
            for r in sorted(records.values(), key=lambda r: r.position)
        ]
    return {
        **row,
        "hosts": session.store.hosts_of(tenant_id),
        "dns": _dns_status(session, row, platform),
        "operations": operations,
        "steps": steps,
        "exports": [asdict(e) for e in session.store.exports_of(tenant_id)],
    }


def _dns_status(
    session: Session, row: dict[str, Any], platform: PlatformConfig | None
) -> dict[str, Any]:
    """Custom hostnames' verification/SSL status and the records the tenant must publish.

    Asks Cloudflare when it is live (platform from the argument, else the one the
    tenant's last operation recorded); otherwise shows what the last `dns` step recorded.
    """
    recorded = session.store.last_done(row["id"], StepName("dns"))
    hostnames = dns_step.recorded_hostnames(recorded.outputs) if recorded else []
    result: dict[str, Any] = {"source": "recorded", "custom_hostnames": hostnames}
    try:
        platform = platform or planning.recorded_platform(session, row["id"])
        desired = dns_resources.desired(Tenant.model_validate(row["spec"]), platform)
        result["hostname"] = desired.origin
        if platform.modes.cloudflare is DriverMode.LIVE:
            statuses = session.dns_provider(platform).status(desired)
            result.update(
                source="cloudflare",
                custom_hostnames=[asdict(s) for s in statuses],
            )
    except ControlPlaneError as exc:
        result["error"] = exc.message
    return result


def audit(session: Session, tenant_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Newest audit entries first."""
    return session.store.audit_entries(tenant_id, limit)
