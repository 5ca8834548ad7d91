"""Postgres-backed state: tenants, operations, step records, locks and the audit log.

Satisfies the engine's `OperationStore` and `LockManager` Protocols structurally. Every
step write checks the writer's fencing token in the same transaction, so a process that
lost its lease (paused, partitioned) cannot overwrite the new holder's progress.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from controlplane.errors import ConflictError, NotFoundError
from controlplane.models.exports import ExportRecord
from controlplane.models.operations import (
    UNFINISHED,
    AuditEntry,
    Lease,
    OperationRecord,
    OperationStatus,
    StepName,
    StepRecord,
    StepStatus,
)
from controlplane.state import lookups, queue
from controlplane.state.tables import (
    audit_log,
    operation_steps,
    operations,
    tenant_exports,
    tenant_hosts,
    tenant_locks,
    tenant_reconcile,
    tenants,
)

__all__ = ["RecordedTenants", "Store", "TenantRow", "TenantState", "default_actor", "new_holder"]

log = logging.getLogger(__name__)

TenantRow = dict[str, Any]


@dataclass(frozen=True)
class TenantState:
    """The few columns that decide whether `apply` has anything to do for a tenant."""

    status: str
    applied_fingerprint: str
    unfinished_operation: bool
    # Render folder of the newest operation ("" if none): files there are part of "applied".
    out_dir: str = ""


def new_holder(actor: str) -> str:
    """A lock-holder id for this process: `actor/host/pid/random` (host+pid find dead holders)."""
    return f"{actor}/{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def _holder_alive(holder: str) -> bool:
    """False only when the holder provably ran on this host and its process is gone."""
    parts = holder.rsplit("/", 3)
    if len(parts) != 4 or parts[1] != socket.gethostname() or not parts[2].isdigit():
        return True
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def default_actor() -> str:
    """Who is acting, for the audit log: user@host unless the shell says otherwise."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def _now() -> datetime:
    return datetime.now(UTC)


class Store:
    """All reads and writes of control-plane state."""

    def __init__(self, engine: sa.Engine, *, actor: str, lease_seconds: float = 60.0) -> None:
        self.engine = engine
        self.actor = actor
        self.lease_seconds = lease_seconds

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        """One transaction; a lost or refused connection is an outage (exit 5), not a bug."""
        with lookups.connection(self.engine, write=True) as conn:
            yield conn

    # -- tenants ---------------------------------------------------------------

    def get_tenant(self, tenant_id: str) -> TenantRow:
        """Return the recorded tenant; NotFoundError if there is none."""
        with self._tx() as conn:
            row = (
                conn.execute(sa.select(tenants).where(tenants.c.id == tenant_id)).mappings().first()
            )
        if row is None:
            msg = (
                f"tenant '{tenant_id}' is not recorded — run `tenantctl apply -f` on its file first"
            )
            raise NotFoundError(msg)
        return dict(row)

    def list_tenants(self) -> list[TenantRow]:
        """Every recorded tenant, by id."""
        with self._tx() as conn:
            rows = conn.execute(sa.select(tenants).order_by(tenants.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def record_tenant(
        self,
        spec: Mapping[str, Any],
        *,
        fingerprint: str,
        source_file: str,
        hosts: Mapping[str, str],
    ) -> TenantRow:
        """Insert or update a tenant and reserve its hostnames in one transaction.

        Raises:
            ConflictError: a hostname belongs to another tenant.
        """
        tenant_id = str(spec["id"])
        now = _now()
        values = {
            "name": spec["name"],
            "tier": spec["tier"],
            "region": spec["region"],
            "spec": dict(spec),
            "spec_fingerprint": fingerprint,
            "source_file": source_file,
            "updated_at": now,
        }
        with self._tx() as conn:
            current = conn.execute(
                sa.select(tenants.c.spec_fingerprint, tenants.c.status)
                .where(tenants.c.id == tenant_id)
                .with_for_update()
            ).first()
            if current is None:
                conn.execute(
                    tenants.insert().values(
                        id=tenant_id, status="provisioning", created_at=now, **values
                    )
                )
            elif current.spec_fingerprint != fingerprint:
                conn.execute(
                    tenants.update()
                    .where(tenants.c.id == tenant_id)
                    .values(generation=tenants.c.generation + 1, status="provisioning", **values)
                )
            self._reserve_hosts(conn, tenant_id, hosts)
            row = conn.execute(sa.select(tenants).where(tenants.c.id == tenant_id)).mappings().one()
        return dict(row)

    @staticmethod
    def _reserve_hosts(conn: sa.Connection, tenant_id: str, hosts: Mapping[str, str]) -> None:
        owners = conn.execute(
            sa.select(tenant_hosts.c.hostname, tenant_hosts.c.tenant_id).where(
                tenant_hosts.c.hostname.in_(list(hosts))
            )
        ).all()
        taken = [(h, owner) for h, owner in owners if owner != tenant_id]
        if taken:
            listed = ", ".join(f"{h} (tenant '{owner}')" for h, owner in taken)
            msg = f"tenant '{tenant_id}': hostname already claimed: {listed}"
            raise ConflictError(msg)
        conn.execute(
            tenant_hosts.delete().where(
                tenant_hosts.c.tenant_id == tenant_id, tenant_hosts.c.hostname.not_in(list(hosts))
            )
        )
        if hosts:
            stmt = pg_insert(tenant_hosts).values(
                [{"hostname": h, "tenant_id": tenant_id, "kind": k} for h, k in hosts.items()]
            )
            try:
                conn.execute(stmt.on_conflict_do_nothing(index_elements=["hostname"]))
            except IntegrityError as exc:  # pragma: no cover - guarded by the select above
                msg = f"tenant '{tenant_id}': hostname race, retry"
                raise ConflictError(msg) from exc

    def set_status(
        self, tenant_id: str, status: str, *, applied_fingerprint: str | None = None
    ) -> None:
        """Change a tenant's status (and the fingerprint it converged to)."""
        values: dict[str, Any] = {"status": status, "updated_at": _now()}
        if applied_fingerprint is not None:
            values["applied_fingerprint"] = applied_fingerprint
        with self._tx() as conn:
            conn.execute(tenants.update().where(tenants.c.id == tenant_id).values(**values))

    def set_lifecycle(self, tenant_id: str, status: str, purge_after: datetime | None) -> None:
        """Set a tenant's status and purge date together (delete, restore, purge).

        Settles a `pending-deletion` mark in the same transaction: the tenant is deleted
        now, or brought back on purpose (the next `apply -f` of its directory marks it
        again if its file is still gone).
        """
        values = {"status": status, "purge_after": purge_after, "updated_at": _now()}
        with self._tx() as conn:
            conn.execute(tenants.update().where(tenants.c.id == tenant_id).values(**values))
            conn.execute(
                tenant_reconcile.update()
                .where(tenant_reconcile.c.tenant_id == tenant_id)
                .values(pending_deletion_since=None)
            )

    def record_export(self, export: ExportRecord) -> None:
        """Insert or replace the record of one export (its id is the operation's)."""
        values = asdict(export)
        stmt = pg_insert(tenant_exports).values(**values)
        update = {k: stmt.excluded[k] for k in values if k != "id"}
        with self._tx() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=update))

    def exports_of(self, tenant_id: str) -> list[ExportRecord]:
        """The tenant's exports, newest first."""
        query = (
            sa.select(tenant_exports)
            .where(tenant_exports.c.tenant_id == tenant_id)
            .order_by(tenant_exports.c.created_at.desc())
        )
        with self._tx() as conn:
            return [ExportRecord(**row) for row in conn.execute(query).mappings().all()]

    def hosts_of(self, tenant_id: str) -> dict[str, str]:
        """Hostnames reserved by the tenant, with their kind (`subdomain` or `custom`)."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(tenant_hosts.c.hostname, tenant_hosts.c.kind).where(
                    tenant_hosts.c.tenant_id == tenant_id
                )
            ).all()
        return {h: k for h, k in rows}

    def host_owners(self, hostnames: Sequence[str]) -> dict[str, str]:
        """Recorded owner of each of `hostnames` that has one (one query)."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(tenant_hosts.c.hostname, tenant_hosts.c.tenant_id).where(
                    tenant_hosts.c.hostname.in_(list(hostnames))
                )
            ).all()
        return {h: t for h, t in rows}

    def release_hosts(self, tenant_id: str, hostnames: Sequence[str]) -> None:
        """Drop the tenant's claim on `hostnames` (its new file no longer names them)."""
        with self._tx() as conn:
            conn.execute(
                tenant_hosts.delete().where(
                    tenant_hosts.c.tenant_id == tenant_id,
                    tenant_hosts.c.hostname.in_(list(hostnames)),
                )
            )

    def recorded(self) -> RecordedTenants:
        """Every tenant row and hostname in two queries: the registry `verify` reads in bulk."""
        with self._tx() as conn:
            rows = conn.execute(sa.select(tenants)).mappings().all()
            hosts = conn.execute(
                sa.select(tenant_hosts.c.hostname, tenant_hosts.c.tenant_id, tenant_hosts.c.kind)
            ).all()
        found = RecordedTenants({r["id"]: dict(r) for r in rows})
        for hostname, tenant_id, kind in hosts:
            found.hosts.setdefault(tenant_id, {})[hostname] = kind
        return found

    def resolve_host(self, hostname: str) -> str:
        """Return the tenant that owns `hostname`; NotFoundError otherwise (never a default)."""
        with self._tx() as conn:
            owner = conn.execute(
                sa.select(tenant_hosts.c.tenant_id).where(
                    tenant_hosts.c.hostname == hostname.lower()
                )
            ).scalar_one_or_none()
        if owner is None:
            msg = f"no tenant owns host '{hostname}'"
            raise NotFoundError(msg)
        return str(owner)

    # -- operations --------------------------------------------------------------

    def begin_operation(
        self, kind: str, fingerprint: str, *, context: Mapping[str, object], lease: Lease
    ) -> OperationRecord:
        """Resume the tenant's unfinished operation of this kind and spec, or start one.

        An unfinished operation for an older spec is superseded: its finished steps stay
        on record, and the fingerprint check lets the new operation skip them. Fenced,
        and audited in the same transaction.
        """
        tenant_id = lease.tenant_id
        with self._tx() as conn:
            self._check_fence(conn, lease)
            rows = (
                conn.execute(
                    sa.select(operations)
                    .where(
                        operations.c.tenant_id == tenant_id,
                        operations.c.status.in_([s.value for s in UNFINISHED]),
                    )
                    .order_by(operations.c.created_at.desc())
                )
                .mappings()
                .all()
            )
            for row in rows:
                if row["kind"] == kind and row["spec_fingerprint"] == fingerprint:
                    resumed = {"status": "running", "context": dict(context)}
                    conn.execute(
                        operations.update().where(operations.c.id == row["id"]).values(**resumed)
                    )
                    detail = {
                        "operation": row["id"],
                        "kind": kind,
                        "was": row["status"],
                        **_holding(lease),
                    }
                    _insert_audit(
                        conn, self.actor, AuditEntry("operation.resumed", tenant_id, detail)
                    )
                    return _operation({**row, **resumed})
                conn.execute(
                    operations.update()
                    .where(operations.c.id == row["id"])
                    .values(status="superseded", finished_at=_now())
                )
            values: dict[str, Any] = {
                "id": str(uuid.uuid4()),
                "tenant_id": tenant_id,
                "kind": kind,
                "status": "running",
                "spec_fingerprint": fingerprint,
                "message": "",
                "created_at": _now(),
                "context": dict(context),
            }
            conn.execute(operations.insert().values(**values))
            detail = {"operation": values["id"], "kind": kind, **_holding(lease)}
            _insert_audit(conn, self.actor, AuditEntry("operation.started", tenant_id, detail))
        return _operation(values)

    def queue_operation(
        self, tenant_id: str, kind: str, fingerprint: str, *, context: Mapping[str, object]
    ) -> OperationRecord:
        """Record an operation for the queue workers and queue its job, in one transaction.

        The tenant's unfinished operation of this kind and spec is queued again (a failed
        one is retried, as a re-run resumes it) rather than recorded twice.

        Raises:
            ConflictError: a job of this tenant waits in the queue already.
        """
        with self._tx() as conn:
            row = (
                conn.execute(
                    sa.select(operations)
                    .where(
                        operations.c.tenant_id == tenant_id,
                        operations.c.kind == kind,
                        operations.c.spec_fingerprint == fingerprint,
                        operations.c.status.in_([s.value for s in UNFINISHED]),
                    )
                    .order_by(operations.c.created_at.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            values: dict[str, Any] = (
                dict(row)
                if row
                else {
                    "id": str(uuid.uuid4()),
                    "tenant_id": tenant_id,
                    "kind": kind,
                    "spec_fingerprint": fingerprint,
                    "message": "",
                    "created_at": _now(),
                }
            )
            # A running one keeps its status: its holder finishes it, or the job resumes it.
            if values.get("status") != OperationStatus.RUNNING:
                values.update(status=OperationStatus.QUEUED.value, context=dict(context))
            if row is None:
                conn.execute(operations.insert().values(**values))
            else:
                conn.execute(
                    operations.update()
                    .where(operations.c.id == row["id"])
                    .values(status=values["status"], context=values["context"])
                )
            if queue.waiting(conn, tenant_id) == values["id"]:
                return _operation(values)  # queued already: its job is waiting
            job = queue.defer(conn, values["id"], tenant_id)
            detail = {"operation": values["id"], "kind": kind, "job": job}
            _insert_audit(conn, self.actor, AuditEntry("operation.queued", tenant_id, detail))
        return _operation(values)

    def supersede_if_newer(self, operation_id: str) -> bool:
        """Supersede the operation if its tenant has a newer unfinished one (a later wish).

        A queue worker asks this under the tenant's lease before it runs a job: the
        newer operation's own job comes next and would undo an older spec applied now.
        """
        mine = operations.alias("mine")
        newer = (
            sa.select(operations.c.id)
            .where(
                operations.c.tenant_id == mine.c.tenant_id,
                operations.c.created_at > mine.c.created_at,
                operations.c.status.in_([s.value for s in UNFINISHED]),
            )
            .exists()
        )
        with self._tx() as conn:
            found = conn.execute(
                sa.select(mine.c.id).where(mine.c.id == operation_id, newer)
            ).first()
            if found is None:
                return False
            conn.execute(
                operations.update()
                .where(operations.c.id == operation_id)
                .values(status=OperationStatus.SUPERSEDED.value, finished_at=_now())
            )
        return True

    def fail_queued(self, operation_id: str, message: str) -> None:
        """Mark a still queued operation failed: it could not begin (no lease to fence)."""
        with self._tx() as conn:
            row = conn.execute(
                operations.update()
                .where(
                    operations.c.id == operation_id,
                    operations.c.status == OperationStatus.QUEUED.value,
                )
                .values(status=OperationStatus.FAILED.value, message=message, finished_at=_now())
                .returning(operations.c.tenant_id, operations.c.kind)
            ).first()
            if row is not None:
                detail = {"operation": operation_id, "kind": row.kind, "error": message}
                entry = AuditEntry("operation.failed", row.tenant_id, detail)
                _insert_audit(conn, self.actor, entry)

    def requeue(self, operation_id: str, tenant_id: str, *, at: datetime | None) -> bool:
        """Queue the operation's job again (no sooner than `at`).

        Returns False when the tenant has a job waiting already: that one runs the
        tenant's newest operation, which resumes or supersedes this one.
        """
        try:
            with self._tx() as conn:
                queue.defer(conn, operation_id, tenant_id, at=at)
        except ConflictError:
            return False
        return True

    def finish_operation(
        self, operation_id: str, status: str, message: str, lease: Lease, audit: AuditEntry
    ) -> None:
        """Set an operation's status and append `audit`, if the caller still holds the lease."""
        terminal = status in (
            OperationStatus.SUCCEEDED,
            OperationStatus.FAILED,
            OperationStatus.ROLLED_BACK,
        )
        with self._tx() as conn:
            self._check_fence(conn, lease)
            conn.execute(
                operations.update()
                .where(operations.c.id == operation_id)
                .values(status=status, message=message, finished_at=_now() if terminal else None)
            )
            _insert_audit(conn, self.actor, audit)

    def tenant_states(self, ids: Sequence[str] | None = None) -> dict[str, TenantState]:
        """Status, applied fingerprint and unfinished-operation flag of tenants, in one query.

        Every tenant unless `ids`: the bulk read that lets `apply` skip converged tenants
        without a query each.
        """
        unfinished = (
            sa.select(operations.c.id)
            .where(
                operations.c.tenant_id == tenants.c.id,
                operations.c.status.in_([s.value for s in UNFINISHED]),
            )
            .exists()
        )
        out_dir = (
            sa.select(operations.c.context["out_dir"].astext)
            .where(operations.c.tenant_id == tenants.c.id)
            .order_by(operations.c.created_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        query = sa.select(
            tenants.c.id, tenants.c.status, tenants.c.applied_fingerprint, unfinished, out_dir
        )
        if ids is not None:
            query = query.where(tenants.c.id.in_(list(ids)))
        with self._tx() as conn:
            return {
                row[0]: TenantState(row[1], row[2], bool(row[3]), row[4] or "")
                for row in conn.execute(query).all()
            }

    def latest_done(self, ids: Sequence[str] | None = None) -> dict[str, dict[str, StepRecord]]:
        """Newest finished record of every step of every tenant (or of `ids`), in one query."""
        query = (
            sa.select(operation_steps)
            .where(operation_steps.c.status == StepStatus.DONE.value)
            .ext(distinct_on(operation_steps.c.tenant_id, operation_steps.c.name))
            .order_by(
                operation_steps.c.tenant_id,
                operation_steps.c.name,
                operation_steps.c.finished_at.desc(),
            )
        )
        if ids is not None:
            query = query.where(operation_steps.c.tenant_id.in_(list(ids)))
        found: dict[str, dict[str, StepRecord]] = {}
        with self._tx() as conn:
            for row in conn.execute(query).mappings():
                found.setdefault(row["tenant_id"], {})[row["name"]] = _step(dict(row))
        return found

    def operation_context(self, tenant_id: str) -> dict[str, Any]:
        """What the tenant's newest operation recorded (platform config, render folder)."""
        with self._tx() as conn:
            found = conn.execute(
                sa.select(operations.c.context)
                .where(operations.c.tenant_id == tenant_id)
                .order_by(operations.c.created_at.desc())
                .limit(1)
            ).scalar_one_or_none()
        return dict(found or {})

    def operations_of(self, tenant_id: str, limit: int = 10) -> list[TenantRow]:
        """The tenant's newest operations, newest first."""
        with self._tx() as conn:
            rows = (
                conn.execute(
                    sa.select(operations)
                    .where(operations.c.tenant_id == tenant_id)
                    .order_by(operations.c.created_at.desc())
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [dict(r) for r in rows]

    def load_steps(self, operation_id: str) -> dict[str, StepRecord]:
        """Step records of an operation, by name."""
        with self._tx() as conn:
            rows = (
                conn.execute(
                    sa.select(operation_steps).where(operation_steps.c.operation_id == operation_id)
                )
                .mappings()
                .all()
            )
        return {r["name"]: _step(dict(r)) for r in rows}

    def last_done(self, tenant_id: str, step: StepName) -> StepRecord | None:
        """Newest finished record of `step` for the tenant, across operations."""
        with self._tx() as conn:
            row = (
                conn.execute(
                    sa.select(operation_steps)
                    .where(
                        operation_steps.c.tenant_id == tenant_id,
                        operation_steps.c.name == step,
                        operation_steps.c.status == StepStatus.DONE.value,
                    )
                    .order_by(operation_steps.c.finished_at.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return None if row is None else _step(dict(row))

    def save_step(self, record: StepRecord, lease: Lease, audit: AuditEntry | None = None) -> None:
        """Upsert a step record (and `audit`, in the same transaction), fenced by `lease`."""
        values = {
            "operation_id": record.operation_id,
            "name": record.name,
            "tenant_id": lease.tenant_id,
            "position": record.position,
            "status": record.status.value,
            "fingerprint": record.fingerprint,
            "attempts": record.attempts,
            "last_error": record.last_error,
            "skipped": record.skipped,
            "next_attempt_at": record.next_attempt_at,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            "outputs": dict(record.outputs),
        }
        stmt = pg_insert(operation_steps).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["operation_id", "name"],
            set_={k: stmt.excluded[k] for k in values if k not in ("operation_id", "name")},
        )
        with self._tx() as conn:
            self._check_fence(conn, lease)
            conn.execute(stmt)
            if audit is not None:
                _insert_audit(conn, self.actor, audit)

    # -- locks -------------------------------------------------------------------

    def acquire(self, tenant_id: str, holder: str, *, wait: float) -> Lease:
        """Take the tenant's lease, polling up to `wait` seconds while another holds it.

        A lease whose holder process died on this host (kill -9, OOM) is taken over at
        once; one held from another host is only taken over when it expires.
        """
        deadline = time.monotonic() + wait
        while True:
            lease = self._try_acquire(tenant_id, holder)
            if lease is not None:
                return lease
            if self._expire_if_holder_died(tenant_id):
                continue
            if time.monotonic() >= deadline:
                raise ConflictError(self._held_message(tenant_id), retryable=True)
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def _try_acquire(self, tenant_id: str, holder: str) -> Lease | None:
        now = _now()
        expires = now + timedelta(seconds=self.lease_seconds)
        insert = pg_insert(tenant_locks).values(
            tenant_id=tenant_id, holder=holder, token=1, expires_at=expires
        )
        # Take over only an expired lease; the token only ever grows (fencing).
        upsert = insert.on_conflict_do_update(
            index_elements=["tenant_id"],
            set_={"holder": holder, "token": tenant_locks.c.token + 1, "expires_at": expires},
            where=tenant_locks.c.expires_at < now,
        ).returning(tenant_locks.c.token)
        with self._tx() as conn:
            token = conn.execute(upsert).scalar_one_or_none()
        return None if token is None else Lease(tenant_id, holder, int(token), expires)

    def _expire_if_holder_died(self, tenant_id: str) -> bool:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(tenant_locks.c.holder, tenant_locks.c.token).where(
                    tenant_locks.c.tenant_id == tenant_id
                )
            ).first()
            if row is None or _holder_alive(row.holder):
                return False
            log.warning("tenant %s: lock holder %s is gone; taking over", tenant_id, row.holder)
            conn.execute(
                tenant_locks.update()
                .where(tenant_locks.c.tenant_id == tenant_id, tenant_locks.c.token == row.token)
                .values(expires_at=_now() - timedelta(seconds=1))
            )
        return True

    def _held_message(self, tenant_id: str) -> str:
        with self._tx() as conn:
            row = (
                conn.execute(sa.select(tenant_locks).where(tenant_locks.c.tenant_id == tenant_id))
                .mappings()
                .first()
            )
        holder = row["holder"] if row else "another process"
        until = row["expires_at"].isoformat(timespec="seconds") if row else "soon"
        return (
            f"tenant '{tenant_id}' is locked by {holder} (lease until {until}): "
            "another operation is running on it — wait for it, "
            "or retry with a longer --lock-timeout"
        )

    def renew(self, lease: Lease) -> Lease:
        """Extend a held lease; ConflictError if another holder took it over."""
        expires = _now() + timedelta(seconds=self.lease_seconds)
        with self._tx() as conn:
            updated = conn.execute(
                tenant_locks.update()
                .where(
                    tenant_locks.c.tenant_id == lease.tenant_id, tenant_locks.c.token == lease.token
                )
                .values(expires_at=expires)
            ).rowcount
        if not updated:
            msg = f"tenant '{lease.tenant_id}': lost the lock to another process; re-run"
            raise ConflictError(msg)
        return Lease(lease.tenant_id, lease.holder, lease.token, expires)

    def release(self, lease: Lease) -> None:
        """Expire the lease now, keeping the token counter for the next holder."""
        with self._tx() as conn:
            conn.execute(
                tenant_locks.update()
                .where(
                    tenant_locks.c.tenant_id == lease.tenant_id, tenant_locks.c.token == lease.token
                )
                .values(expires_at=_now() - timedelta(seconds=1))
            )

    @staticmethod
    def _check_fence(conn: sa.Connection, lease: Lease) -> None:
        token = conn.execute(
            sa.select(tenant_locks.c.token)
            .where(tenant_locks.c.tenant_id == lease.tenant_id)
            .with_for_update()
        ).scalar_one_or_none()
        if token != lease.token:
            msg = (
                f"tenant '{lease.tenant_id}': lock was taken over "
                f"(fencing token {token} != {lease.token})"
            )
            raise ConflictError(msg)

    # -- audit -------------------------------------------------------------------

    def audit(self, action: str, tenant_id: str | None, detail: Mapping[str, object]) -> None:
        """Append an audit entry outside any operation (the table refuses updates and deletes)."""
        with self._tx() as conn:
            _insert_audit(conn, self.actor, AuditEntry(action, tenant_id, detail))

    def audit_entries(self, tenant_id: str | None = None, limit: int = 100) -> list[TenantRow]:
        """Newest audit entries first, optionally for one tenant."""
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if tenant_id:
            query = query.where(audit_log.c.tenant_id == tenant_id)
        with self._tx() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]


@dataclass
class RecordedTenants:
    """A read-only snapshot of the tenant registry (the steps' `verify` needs no writes)."""

    rows: dict[str, TenantRow]
    hosts: dict[str, dict[str, str]] = field(default_factory=dict)

    def get_tenant(self, tenant_id: str) -> TenantRow:
        """The recorded row; NotFoundError if none."""
        if tenant_id not in self.rows:
            msg = f"tenant '{tenant_id}' is not recorded"
            raise NotFoundError(msg)
        return self.rows[tenant_id]

    def hosts_of(self, tenant_id: str) -> dict[str, str]:
        """Hostnames reserved by the tenant, with their kind."""
        return dict(self.hosts.get(tenant_id, {}))

    def record_tenant(self, spec: Mapping[str, Any], **_: object) -> TenantRow:
        """A snapshot takes no writes (only verify runs against it)."""
        raise NotImplementedError(_READ_ONLY)

    def set_status(self, tenant_id: str, status: str, **_: object) -> None:
        """A snapshot takes no writes (only verify runs against it)."""
        raise NotImplementedError(_READ_ONLY)


_READ_ONLY = "a registry snapshot is read-only"


def _holding(lease: Lease) -> dict[str, object]:
    """Who runs an operation from here on: the audit log shows every hand-over."""
    return {"holder": lease.holder, "token": lease.token}


def _insert_audit(conn: sa.Connection, actor: str, entry: AuditEntry) -> None:
    conn.execute(
        audit_log.insert().values(
            at=_now(),
            actor=actor,
            tenant_id=entry.tenant_id,
            action=entry.action,
            detail=dict(entry.detail),
        )
    )


def _operation(row: Mapping[str, Any]) -> OperationRecord:
    return OperationRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        kind=row["kind"],
        status=row["status"],
        spec_fingerprint=row["spec_fingerprint"],
        created_at=row["created_at"],
        message=row["message"],
        context=dict(row.get("context") or {}),
    )


def _step(row: Mapping[str, Any]) -> StepRecord:
    return StepRecord(
        operation_id=row["operation_id"],
        name=StepName(row["name"]),
        position=row["position"],
        status=StepStatus(row["status"]),
        fingerprint=row["fingerprint"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        next_attempt_at=row["next_attempt_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        skipped=row["skipped"],
        outputs=row["outputs"],
    )
