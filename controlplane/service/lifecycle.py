"""Tenant lifecycle commands: create one tenant, suspend it, resume it.

Every one of them runs a registered flow through `operations.run` (lease, fenced
records, audit), like `apply` does. `create` is onboarding for a tenant not yet
recorded; `suspend`/`resume` work from what was recorded (spec, platform config and
render folder of the tenant's last operation), so they need no file.

`open_session` is `sessions.open_session`, re-exported for the shells that only
run lifecycle commands.
"""

from __future__ import annotations

from pathlib import Path

from controlplane.config.loading import TenantSource
from controlplane.engine.operating import Outcome
from controlplane.errors import ConflictError, NotFoundError
from controlplane.flows import onboarding, suspending
from controlplane.models.operations import UNFINISHED
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.service import operations, planning
from controlplane.service.sessions import Session, open_session

__all__ = [
    "CREATE",
    "RESUME",
    "SUSPEND",
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
    if status not in accepted and not _unfinished(session, tenant_id, kind):
        msg = (
            f"tenant '{tenant_id}' is {status}: `tenantctl {kind}` needs it "
            f"{' or '.join(sorted(accepted))}"
            + (" — finish its apply first" if kind == SUSPEND else "")
        )
        raise ConflictError(msg)
    source, platform, last_out = recorded(session, tenant_id)
    return operations.run(session.at(out_dir or last_out), kind, source, platform)


def _unfinished(session: Session, tenant_id: str, kind: str) -> bool:
    """True when the tenant's newest operation is an unfinished `kind` (a crash after its
    last step set the status, before the operation was closed): running it again finishes it.
    """
    newest = session.store.operations_of(tenant_id, limit=1)
    return bool(newest) and newest[0]["kind"] == kind and newest[0]["status"] in UNFINISHED
