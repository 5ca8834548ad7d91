"""Test doubles shipped with the interfaces: an in-memory store and a fake clock.

`MemoryStore` satisfies the engine's `OperationStore`, `LockManager` and `TenantRegistry`
with the same fencing rules as the Postgres store (every write checks the lease's token),
so engine and flow tests need no Postgres; `FakeClock` is the runner's and operator's
clock and sleep, so retries and lease expiry are tested without real waiting.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from controlplane.engine.operating import Operator, Outcome, Request
from controlplane.engine.retrying import RetryPolicy
from controlplane.engine.steps import Step, StepContext
from controlplane.errors import ConflictError, NotFoundError
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

__all__ = ["FakeClock", "MemoryStore", "run_operation"]


@dataclass
class FakeClock:
    """A clock that only moves when told to (or when something sleeps on it)."""

    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        """Record the sleep and advance the clock by it."""
        self.sleeps.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += timedelta(seconds=seconds)


@dataclass
class _Lock:
    holder: str
    token: int
    expires_at: datetime


@dataclass
class MemoryStore:
    """Operations, steps, leases, tenants and audit in dictionaries, fenced like Postgres."""

    clock: FakeClock = field(default_factory=FakeClock)
    lease_seconds: float = 60.0
    actor: str = "test"
    operations: dict[str, OperationRecord] = field(default_factory=dict)
    steps: dict[tuple[str, str], StepRecord] = field(default_factory=dict)
    audit_log: list[AuditEntry] = field(default_factory=list)
    tenants: dict[str, dict[str, Any]] = field(default_factory=dict)
    hosts: dict[str, tuple[str, str]] = field(default_factory=dict)
    _locks: dict[str, _Lock] = field(default_factory=dict)
    _order: itertools.count[int] = field(default_factory=itertools.count)
    _created: dict[str, int] = field(default_factory=dict)

    # -- locks -------------------------------------------------------------------

    def acquire(self, tenant_id: str, holder: str, *, wait: float) -> Lease:
        """Take the lease if free or expired; one process has nobody to wait for."""
        lock = self._locks.get(tenant_id)
        now = self.clock()
        if lock is not None and lock.expires_at > now and wait <= 0:
            msg = f"tenant '{tenant_id}' is locked by {lock.holder}"
            raise ConflictError(msg, retryable=True)
        if lock is not None and lock.expires_at > now:
            self.clock.sleep(max(0.0, (lock.expires_at - now).total_seconds()))
            return self.acquire(tenant_id, holder, wait=0)
        token = lock.token + 1 if lock else 1
        expires = now + timedelta(seconds=self.lease_seconds)
        self._locks[tenant_id] = _Lock(holder, token, expires)
        return Lease(tenant_id, holder, token, expires)

    def renew(self, lease: Lease) -> Lease:
        """Extend the lease; ConflictError when another holder took it over."""
        self._fence(lease)
        expires = self.clock() + timedelta(seconds=self.lease_seconds)
        self._locks[lease.tenant_id].expires_at = expires
        return replace(lease, expires_at=expires)

    def release(self, lease: Lease) -> None:
        """Expire the lease now (keeps the token counter)."""
        lock = self._locks.get(lease.tenant_id)
        if lock is not None and lock.token == lease.token:
            lock.expires_at = self.clock() - timedelta(seconds=1)

    def _fence(self, lease: Lease) -> None:
        lock = self._locks.get(lease.tenant_id)
        if lock is None or lock.token != lease.token:
            found = lock.token if lock else None
            msg = f"tenant '{lease.tenant_id}': lock was taken over (fencing token {found})"
            raise ConflictError(msg)

    # -- operations ----------------------------------------------------------------

    def begin_operation(
        self, kind: str, fingerprint: str, *, context: Mapping[str, object], lease: Lease
    ) -> OperationRecord:
        """Resume the unfinished operation of this kind and spec, or start one."""
        self._fence(lease)
        tenant = lease.tenant_id
        for op in self.operations_of(tenant):
            if op.status not in UNFINISHED:
                continue
            if op.kind == kind and op.spec_fingerprint == fingerprint:
                resumed = replace(op, status=OperationStatus.RUNNING.value, context=dict(context))
                self.operations[op.id] = resumed
                self.audit_log.append(AuditEntry("operation.resumed", tenant, {"operation": op.id}))
                return resumed
            self.operations[op.id] = replace(op, status=OperationStatus.SUPERSEDED.value)
        op = OperationRecord(
            str(uuid.uuid4()), tenant, kind, "running", fingerprint, self.clock(), "", dict(context)
        )
        self.operations[op.id] = op
        self._created[op.id] = next(self._order)
        self.audit_log.append(AuditEntry("operation.started", tenant, {"operation": op.id}))
        return op

    def finish_operation(
        self, operation_id: str, status: str, message: str, lease: Lease, audit: AuditEntry
    ) -> None:
        """Set the status and append `audit`, fenced."""
        self._fence(lease)
        self.operations[operation_id] = replace(
            self.operations[operation_id], status=status, message=message
        )
        self.audit_log.append(audit)

    def operations_of(self, tenant_id: str) -> list[OperationRecord]:
        """The tenant's operations, newest first."""
        found = [op for op in self.operations.values() if op.tenant_id == tenant_id]
        return sorted(found, key=lambda op: self._created[op.id], reverse=True)

    def load_steps(self, operation_id: str) -> dict[str, StepRecord]:
        """Step records of an operation, by name."""
        return {name: r for (op, name), r in self.steps.items() if op == operation_id}

    def last_done(self, tenant_id: str, step: StepName) -> StepRecord | None:
        """Newest done record of `step` for the tenant."""
        for op in self.operations_of(tenant_id):
            record = self.steps.get((op.id, step))
            if record is not None and record.status is StepStatus.DONE:
                return record
        return None

    def save_step(self, record: StepRecord, lease: Lease, audit: AuditEntry | None = None) -> None:
        """Store `record` (and `audit`), fenced."""
        self._fence(lease)
        self.steps[(record.operation_id, record.name)] = record
        if audit is not None:
            self.audit_log.append(audit)

    def actions(self, tenant_id: str | None = None) -> list[str]:
        """Audit actions in the order written (optionally of one tenant)."""
        return [e.action for e in self.audit_log if tenant_id in (None, e.tenant_id)]

    # -- tenants -------------------------------------------------------------------

    def get_tenant(self, tenant_id: str) -> Mapping[str, Any]:
        """The recorded tenant row; NotFoundError if none."""
        if tenant_id not in self.tenants:
            msg = f"tenant '{tenant_id}' is not recorded"
            raise NotFoundError(msg)
        return dict(self.tenants[tenant_id])

    def record_tenant(
        self,
        spec: Mapping[str, Any],
        *,
        fingerprint: str,
        source_file: str,
        hosts: Mapping[str, str],
    ) -> Mapping[str, Any]:
        """Insert or update the tenant and reserve its hostnames (ConflictError if taken)."""
        tenant_id = str(spec["id"])
        taken = [h for h in hosts if self.hosts.get(h, (tenant_id, ""))[0] != tenant_id]
        if taken:
            msg = f"hostname already claimed: {', '.join(sorted(taken))}"
            raise ConflictError(msg)
        row = self.tenants.setdefault(
            tenant_id, {"id": tenant_id, "generation": 0, "applied_fingerprint": ""}
        )
        if row.get("spec_fingerprint") != fingerprint:
            row.update(generation=row["generation"] + 1, status="provisioning")
        row.update(spec=dict(spec), spec_fingerprint=fingerprint, source_file=source_file)
        self.hosts = {h: v for h, v in self.hosts.items() if v[0] != tenant_id}
        self.hosts.update({h: (tenant_id, kind) for h, kind in hosts.items()})
        return dict(row)

    def set_status(
        self, tenant_id: str, status: str, *, applied_fingerprint: str | None = None
    ) -> None:
        """Change the tenant's status (and the fingerprint it converged to)."""
        self.tenants[tenant_id]["status"] = status
        if applied_fingerprint is not None:
            self.tenants[tenant_id]["applied_fingerprint"] = applied_fingerprint

    def hosts_of(self, tenant_id: str) -> dict[str, str]:
        """Hostnames reserved by the tenant, with their kind."""
        return {h: kind for h, (owner, kind) in self.hosts.items() if owner == tenant_id}


def run_operation(  # noqa: PLR0913 - keyword-only knobs, all defaulted
    store: Any,
    ctx: StepContext,
    steps: Sequence[Step],
    *,
    kind: str = "onboard",
    fingerprint: str = "",
    policy: RetryPolicy | None = None,
    clock: FakeClock | None = None,
) -> Outcome:
    """Run one operation to its end the way the CLI does, waiting on a fake clock.

    `store` is a `MemoryStore` or the Postgres `Store` (both satisfy the engine's
    Protocols); retries advance the fake clock instead of sleeping.
    """
    clock = clock or FakeClock(now=datetime.now(UTC))
    operator = Operator(
        store,
        store,
        "test",
        lock_wait=0,
        policy=policy or RetryPolicy(),
        clock=clock,
        sleep=clock.sleep,
    )
    request = Request(kind, ctx, steps, fingerprint=fingerprint or uuid.uuid4().hex)
    return operator.drive(request)
