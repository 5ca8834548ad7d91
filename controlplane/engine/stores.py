"""The storage the engine needs, as Protocols; `state.store.Store` implements them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from controlplane.models.operations import Lease, StepName, StepRecord

__all__ = ["LockManager", "OperationStore", "TenantRegistry"]


class OperationStore(Protocol):
    """Durable step records; every write is fenced by the caller's lease."""

    def load_steps(self, operation_id: str) -> dict[str, StepRecord]:
        """Return the step records of an operation by step name."""
        ...

    def last_done(self, tenant_id: str, step: StepName) -> StepRecord | None:
        """Return the newest finished record of `step` for a tenant, across operations."""
        ...

    def save_step(self, record: StepRecord, lease: Lease) -> None:
        """Persist `record`; raise ConflictError if `lease` is no longer current."""
        ...

    def finish_operation(self, operation_id: str, status: str, message: str, lease: Lease) -> None:
        """Mark the operation finished (`succeeded` or `failed`)."""
        ...

    def audit(self, action: str, tenant_id: str, detail: Mapping[str, object]) -> None:
        """Append an entry to the audit log."""
        ...


class LockManager(Protocol):
    """Per-tenant leases with fencing tokens."""

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
