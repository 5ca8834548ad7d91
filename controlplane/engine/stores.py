"""The storage the engine needs, as Protocols; `state.store.Store` implements them.

`controlplane.testing.MemoryStore` implements them too, for engine tests without Postgres.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from controlplane.models.operations import AuditEntry, Lease, OperationRecord, StepName, StepRecord

__all__ = ["LockManager", "OperationStore", "TenantRegistry"]


class OperationStore(Protocol):
    """Durable operations and step records; every write is fenced by the caller's lease.

    "Fenced" means: the write and the check that `lease` still holds the tenant's lock
    happen in one transaction, so a holder that lost its lease writes nothing at all.
    """

    def begin_operation(
        self, kind: str, fingerprint: str, *, context: Mapping[str, object], lease: Lease
    ) -> OperationRecord:
        """Resume the tenant's unfinished operation of this kind and spec, or start one.

        Writes `operation.started` (new) or `operation.resumed` to the audit log.
        """
        ...

    def load_steps(self, operation_id: str) -> dict[str, StepRecord]:
        """Return the step records of an operation by step name."""
        ...

    def last_done(self, tenant_id: str, step: StepName) -> StepRecord | None:
        """Return the newest finished record of `step` for a tenant, across operations."""
        ...

    def save_step(self, record: StepRecord, lease: Lease, audit: AuditEntry | None = None) -> None:
        """Persist `record` (and `audit`, in the same transaction); ConflictError if fenced."""
        ...

    def finish_operation(
        self, operation_id: str, status: str, message: str, lease: Lease, audit: AuditEntry
    ) -> None:
        """Set the operation's status and append `audit`, in one fenced transaction."""
        ...


class LockManager(Protocol):
    """Per-tenant leases with fencing tokens."""

    lease_seconds: float

    def acquire(self, tenant_id: str, holder: str, *, wait: float) -> Lease:
        """Take the tenant's lock, waiting up to `wait` seconds; ConflictError if held."""
        ...

    def renew(self, lease: Lease) -> Lease:
        """Extend the lease; ConflictError if it was lost."""
        ...

    def release(self, lease: Lease) -> None:
        """Give the lock up (no-op if it was already taken over)."""
        ...


class TenantRegistry(Protocol):
    """The record of tenants the `record` and `activate` steps keep."""

    def get_tenant(self, tenant_id: str) -> Mapping[str, Any]:
        """Return the recorded tenant row; NotFoundError if none."""
        ...

    def record_tenant(
        self,
        spec: Mapping[str, Any],
        *,
        fingerprint: str,
        source_file: str,
        hosts: Mapping[str, str],
    ) -> Mapping[str, Any]:
        """Insert or update the tenant and reserve its hostnames."""
        ...

    def set_status(
        self, tenant_id: str, status: str, *, applied_fingerprint: str | None = None
    ) -> None:
        """Change the tenant's status."""
        ...

    def hosts_of(self, tenant_id: str) -> dict[str, str]:
        """Hostnames reserved by the tenant, with their kind."""
        ...
