"""Offboarding commands: export a tenant, delete it, purge it after retention, restore it.

Each runs a registered flow (`flows/offboarding.py`) through `operations.run` (lease,
fenced records, audit, resume after a crash), from what the tenant's last operation
recorded (spec, platform config, render folder), like `suspend` and `resume`.

The refusals happen here, before any operation begins, and are audited: `delete` of a
tenant with `lifecycle.deletion_protection` on (unless `force`: the caller confirmed),
and `purge` of a tenant without a verified export (unless `without_export`). Time comes
from `session.clock`, so tests move past a purge date with `testing.FakeClock`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controlplane.engine.operating import Outcome
from controlplane.errors import ConflictError, NotFoundError
from controlplane.flows import offboarding
from controlplane.models.operations import UNFINISHED
from controlplane.models.tenants import Tenant
from controlplane.service import lifecycle, operations, upgrading
from controlplane.service.sessions import Session
from controlplane.steps import exporting

__all__ = [
    "DELETE",
    "EXPORT",
    "PURGE",
    "REFUSED",
    "RESTORE",
    "Candidate",
    "delete",
    "export",
    "exports",
    "purge",
    "purgeable",
    "restore",
]

EXPORT = offboarding.EXPORT
DELETE = offboarding.DELETE
PURGE = offboarding.PURGE
RESTORE = offboarding.RESTORE
# The Outcome status of a tenant `purge` would not touch (exit 4, nothing changed).
REFUSED = "refused"
# Statuses from which each command starts (a crashed run of the same command resumes).
_OFFBOARDED = frozenset({"deleted", "restoring", "purging", "purged"})
_RESTORABLE = frozenset({"deleted", "restoring"})


@dataclass(frozen=True)
class Candidate:
    """A tenant `purge` looked at: what would go, or why it stays."""

    tenant_id: str
    status: str
    purge_after: datetime | None
    export_checksum: str  # of its newest verified export ("" if none)
    hostnames: tuple[str, ...]
    refusal: str = ""  # why purge leaves it ("" when it would go)
    resuming: bool = False  # a purge of it is under way (it goes on: no check again)

    @property
    def unexported(self) -> bool:
        """Purge refuses it without --without-export."""
        return not self.export_checksum and not self.resuming


def export(session: Session, tenant_id: str) -> Outcome:
    """Take a verified, encrypted export of the tenant's data; the tenant stays as it is."""
    status = session.store.get_tenant(tenant_id)["status"]
    if status in ("purging", "purged") and not _unfinished(session, tenant_id, EXPORT):
        msg = f"tenant '{tenant_id}' is {status}: there is nothing left to export"
        raise ConflictError(msg)
    return _run_recorded(session, tenant_id, EXPORT)


def delete(session: Session, tenant_id: str, *, force: bool = False) -> Outcome:
    """Traffic off, a verified export, then `deleted` until `purge_after`.

    Raises:
        ConflictError: deletion protection is on and not `force` (audited), or the
            tenant is already deleted.
    """
    row = session.store.get_tenant(tenant_id)
    if _unfinished(session, tenant_id, DELETE):  # checked and audited when it began
        return _run_recorded(session, tenant_id, DELETE)
    if row["status"] in _OFFBOARDED:
        msg = (
            f"tenant '{tenant_id}' is {row['status']}"
            + (
                f" (purge after {row['purge_after']:%Y-%m-%d %H:%M} UTC)"
                if row["purge_after"]
                else ""
            )
            + f": `tenantctl restore {tenant_id}` brings a deleted tenant back"
        )
        raise ConflictError(msg)
    if Tenant.model_validate(row["spec"]).lifecycle.deletion_protection:
        if not force:
            reason = "lifecycle.deletion_protection is on"
            session.store.audit("delete.refused", tenant_id, {"reason": reason})
            msg = (
                f"tenant '{tenant_id}': {reason} ({row['source_file'] or 'its tenant file'}) — "
                "set it to false and apply, or delete with --force"
            )
            raise ConflictError(msg)
        session.store.audit(
            "delete.forced", tenant_id, {"reason": "deletion protection overridden"}
        )
    return _run_recorded(session, tenant_id, DELETE)


def restore(session: Session, tenant_id: str) -> Outcome:
    """Bring a deleted, not yet purged tenant back: login, network, DNS, `active`."""
    status = session.store.get_tenant(tenant_id)["status"]
    if status not in _RESTORABLE and not _unfinished(session, tenant_id, RESTORE):
        msg = f"tenant '{tenant_id}' is {status}: `tenantctl restore` needs it deleted"
        raise ConflictError(msg)
    return _run_recorded(session, tenant_id, RESTORE)


def purgeable(session: Session, tenant_ids: Sequence[str] | None = None) -> list[Candidate]:
    """The deleted tenants (or `tenant_ids`) and whether purge would remove each now.

    Raises:
        NotFoundError: a named tenant is not recorded.
    """
    rows = {row["id"]: row for row in session.store.list_tenants()}
    missing = sorted(set(tenant_ids or ()) - set(rows))
    if missing:
        msg = f"tenant(s) not recorded: {', '.join(missing)}"
        raise NotFoundError(msg)
    wanted = tenant_ids if tenant_ids is not None else sorted(rows)
    now = session.clock()
    found = []
    for tenant_id in wanted:
        candidate = _candidate(session, rows[tenant_id], now)
        # Unnamed, only the tenants that delete marked are candidates at all.
        if tenant_ids is not None or candidate.status == "deleted" or candidate.resuming:
            found.append(candidate)
    return found


def purge(
    session: Session, *, tenant_ids: list[str] | None = None, without_export: bool = False
) -> list[Outcome]:
    """Remove deleted tenants past their purge date (or those named, if they are).

    A tenant without a verified export is refused (audited) unless `without_export`
    (audited too). The others run the purge flow one after another, each after the
    copies a tier change retired for it are removed (whatever their own date). Unnamed,
    a purge also removes every other tenant's retired copies that are past their date.
    """
    outcomes = []
    for candidate in purgeable(session, tenant_ids):
        tenant_id = candidate.tenant_id
        if candidate.refusal:
            if tenant_ids is not None:
                outcomes.append(_refused(candidate.tenant_id, candidate.refusal))
            continue
        if candidate.unexported and not without_export:
            reason = "no verified export"
            session.store.audit("purge.refused", tenant_id, {"reason": reason})
            hint = f"`tenantctl export {tenant_id}` first, or purge with --without-export"
            outcomes.append(_refused(tenant_id, f"{reason} — {hint}"))
            continue
        if candidate.unexported:
            session.store.audit("purge.without_export", tenant_id, {"confirmed": True})
        upgrading.purge_retired(session, tenant_ids=[tenant_id], force=True)
        outcomes.append(_run_recorded(session, tenant_id, PURGE))
    if tenant_ids is None:
        upgrading.purge_retired(session, now=session.clock())
    return outcomes


def exports(session: Session, tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's exports, newest first (location, checksum, size, verified_at)."""
    session.store.get_tenant(tenant_id)
    return [vars(e) for e in session.store.exports_of(tenant_id)]


def _candidate(session: Session, row: Mapping[str, Any], now: datetime) -> Candidate:
    tenant_id, status, due = row["id"], row["status"], row["purge_after"]
    verified = exporting.verified_export(session.store, tenant_id)
    resuming = _unfinished(session, tenant_id, PURGE)
    return Candidate(
        tenant_id,
        status,
        due,
        verified.checksum if verified else "",
        tuple(sorted(session.store.hosts_of(tenant_id))),
        "" if resuming else _refusal(status, due, now),
        resuming,
    )


def _refusal(status: str, due: datetime | None, now: datetime) -> str:
    """Why purge leaves a tenant now ("" when it is due)."""
    if status != "deleted":
        return f"it is {status}: only a deleted tenant is purged"
    if due is None:
        return "it has no purge date"
    if due > now:
        return f"its retention runs until {due:%Y-%m-%d %H:%M} UTC"
    return ""


def _unfinished(session: Session, tenant_id: str, kind: str) -> bool:
    """Whether the tenant's newest operation is a `kind` that did not finish (it resumes)."""
    newest = session.store.operations_of(tenant_id, limit=1)
    unfinished = {status.value for status in UNFINISHED}
    return bool(newest) and newest[0]["kind"] == kind and newest[0]["status"] in unfinished


def _refused(tenant_id: str, why: str) -> Outcome:
    return Outcome(tenant_id, REFUSED, message=f"not purged: {why}", exit_code=4)


def _run_recorded(session: Session, tenant_id: str, kind: str) -> Outcome:
    source, platform, out_dir = lifecycle.recorded(session, tenant_id)
    return operations.run(session.at(out_dir), kind, source, platform)
