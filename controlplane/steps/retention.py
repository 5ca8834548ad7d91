"""A deleted tenant's retention window: `delete.mark` starts it, `restore.hold` ends it.

`delete.mark` sets the tenant `deleted` with `purge_after = now + lifecycle.retention_days`
(the clock is injected: tests move time with `testing.FakeClock`); `restore.hold` sets
it `restoring` with no purge date, so neither `purge` nor a lapse of time can take it
while `restore` brings it back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from controlplane.engine.steps import Change, StepContext, StepResult, fingerprint_of
from controlplane.models.operations import StepName
from controlplane.steps import exporting

__all__ = ["LifecycleRecords", "RetentionStep"]


class LifecycleRecords(exporting.ExportRecords, Protocol):
    """What the offboarding steps read and write in the state store (`state.store.Store`)."""

    def get_tenant(self, tenant_id: str) -> Mapping[str, Any]:
        """The recorded tenant row; NotFoundError if none."""
        ...

    def set_lifecycle(self, tenant_id: str, status: str, purge_after: datetime | None) -> None:
        """Set the tenant's status and purge date together."""
        ...

    def hosts_of(self, tenant_id: str) -> dict[str, str]:
        """Hostnames reserved by the tenant, with their kind."""
        ...

    def release_hosts(self, tenant_id: str, hostnames: Sequence[str]) -> None:
        """Drop the tenant's claim on `hostnames`."""
        ...

    def audit(self, action: str, tenant_id: str | None, detail: Mapping[str, object]) -> None:
        """Append an audit entry."""
        ...

    def audit_entries(self, tenant_id: str | None = None, limit: int = 100) -> list[Any]:
        """Newest audit entries first."""
        ...


@dataclass(frozen=True)
class RetentionStep:
    """Set the tenant's status with a purge date (`retain`) or without one."""

    records: LifecycleRecords
    clock: Callable[[], datetime]
    status: str
    accepted: frozenset[str]
    name: StepName
    retain: bool = False

    def fingerprint(self, ctx: StepContext) -> str:
        days = ctx.tenant.lifecycle.retention_days if self.retain else None
        return fingerprint_of(self.name, self.status, days, ctx.tenant.id)

    def plan(self, ctx: StepContext) -> list[Change]:
        if self.verify(ctx):
            return [Change("update", f"tenant/{ctx.tenant.id}", f"status -> {self.status}")]
        return [Change("noop", f"tenant/{ctx.tenant.id}")]

    def apply(self, ctx: StepContext) -> StepResult:
        purge_after = None
        if self.retain:
            purge_after = self.clock() + timedelta(days=ctx.tenant.lifecycle.retention_days)
        self.records.set_lifecycle(ctx.tenant.id, self.status, purge_after)
        shown = purge_after.isoformat() if purge_after else ""
        return StepResult({"status": self.status, "purge_after": shown})

    def verify(self, ctx: StepContext) -> list[str]:
        row = self.records.get_tenant(ctx.tenant.id)
        if row["status"] not in self.accepted:
            return [f"status is {row['status']}, not {self.status}"]
        if (row.get("purge_after") is not None) is not self.retain:
            return ["purge date missing" if self.retain else "a purge date is still set"]
        return []

    def destroy(self, ctx: StepContext) -> None:
        del ctx
