"""The steps of `purge`: remove a deleted tenant for good, shred its key, leave a receipt.

Removal runs the onboarding steps' own `destroy` in reverse order (DNS records and
custom hostnames, then network, config and compute objects, then the database through
`terraform destroy`, which drops its roles too). Every `destroy` is safe when the thing is
already gone, so a re-run after a crash at any point finishes the job. `purge.shred`
schedules the deletion of the tenant's export key (crypto-shredding every copy of its
exports that remains), and `purge.receipt` writes the purge receipt to the audit log and
marks the tenant `purged`, releasing its hostnames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from controlplane.engine.steps import Change, Step, StepContext, StepResult, fingerprint_of
from controlplane.models.operations import StepName
from controlplane.steps import database, exporting, retention

__all__ = ["RECEIPT", "DatabaseRemovalStep", "ReceiptStep", "RemovalStep", "ShredStep"]

RECEIPT = "tenant.purged"
_PREFIX = "purge."


@dataclass(frozen=True)
class RemovalStep:
    """`purge.<step>`: the onboarding step's `destroy` (idempotent: gone stays gone)."""

    step: Step

    @property
    def name(self) -> StepName:
        return StepName(_PREFIX + self.step.name)

    def fingerprint(self, ctx: StepContext) -> str:
        return fingerprint_of(self.name, ctx.tenant.id)

    def plan(self, ctx: StepContext) -> list[Change]:
        return [Change("delete", f"{self.step.name}/{ctx.tenant.id}", "destroy")]

    def apply(self, ctx: StepContext) -> StepResult:
        self.step.destroy(ctx)
        return StepResult({"removed": self.step.name})

    def verify(self, ctx: StepContext) -> list[str]:
        # `destroy` returns only once the backend confirmed; nothing more to read back.
        del ctx
        return []

    def destroy(self, ctx: StepContext) -> None:
        del ctx


@dataclass(frozen=True)
class DatabaseRemovalStep:
    """`purge.database`: `terraform destroy` of the tenant's database module.

    A dedicated database refuses to be destroyed while the state says it is protected,
    so the purge (which is that decision) first applies it unprotected.
    """

    provisioner: database.Provisioner
    name: StepName = field(default=StepName("purge.database"))

    def fingerprint(self, ctx: StepContext) -> str:
        return fingerprint_of(self.name, ctx.tenant.id)

    def plan(self, ctx: StepContext) -> list[Change]:
        unit = database.unit_for(ctx.tenant, ctx.platform)
        return [Change("delete", f"database/{unit.module}", "terraform destroy")]

    def apply(self, ctx: StepContext) -> StepResult:
        tenant = ctx.tenant.model_copy(
            update={
                "lifecycle": ctx.tenant.lifecycle.model_copy(update={"deletion_protection": False})
            }
        )
        unit = database.unit_for(tenant, ctx.platform)
        if "deletion_protection" in unit.inputs:
            self.provisioner.apply(unit)
        self.provisioner.destroy(unit)
        return StepResult({"removed": "database", "module": unit.module})

    def verify(self, ctx: StepContext) -> list[str]:
        unit = database.unit_for(ctx.tenant, ctx.platform)
        if self.provisioner.outputs(unit):
            return [f"terraform state of {unit.module} still holds the tenant's database"]
        return []

    def destroy(self, ctx: StepContext) -> None:
        del ctx


@dataclass(frozen=True)
class ShredStep:
    """`purge.shred`: schedule the deletion of the tenant's own key."""

    exports: exporting.ExportStore
    name: StepName = field(default=StepName("purge.shred"))

    def fingerprint(self, ctx: StepContext) -> str:
        return fingerprint_of(self.name, ctx.tenant.id)

    def plan(self, ctx: StepContext) -> list[Change]:
        return [Change("delete", f"key/{ctx.tenant.id}", "schedule key deletion")]

    def apply(self, ctx: StepContext) -> StepResult:
        return StepResult({"shredded": self.exports.shred(ctx.tenant.id)})

    def verify(self, ctx: StepContext) -> list[str]:
        return self.exports.shred_problems(ctx.tenant.id)

    def destroy(self, ctx: StepContext) -> None:
        del ctx


@dataclass(frozen=True)
class ReceiptStep:
    """`purge.receipt`: the receipt in the audit log, then the tenant `purged`."""

    records: retention.LifecycleRecords
    clock: Callable[[], datetime]
    name: StepName = field(default=StepName("purge.receipt"))

    def fingerprint(self, ctx: StepContext) -> str:
        return fingerprint_of(self.name, ctx.tenant.id, ctx.operation_id)

    def plan(self, ctx: StepContext) -> list[Change]:
        return [Change("update", f"tenant/{ctx.tenant.id}", "status -> purged, receipt")]

    def apply(self, ctx: StepContext) -> StepResult:
        hosts = self.records.hosts_of(ctx.tenant.id)
        if not self._receipt(ctx):  # written once, although the step runs at least once
            self.records.audit(RECEIPT, ctx.tenant.id, self._detail(ctx, hosts))
        self.records.release_hosts(ctx.tenant.id, list(hosts))
        self.records.set_lifecycle(ctx.tenant.id, "purged", None)
        return StepResult({"status": "purged"})

    def verify(self, ctx: StepContext) -> list[str]:
        problems = [] if self._receipt(ctx) else ["no purge receipt in the audit log"]
        status = self.records.get_tenant(ctx.tenant.id)["status"]
        return problems + ([] if status == "purged" else [f"status is {status}, not purged"])

    def destroy(self, ctx: StepContext) -> None:
        del ctx  # a receipt is never taken back

    def _receipt(self, ctx: StepContext) -> bool:
        entries = self.records.audit_entries(ctx.tenant.id, limit=20)
        return any(
            e["action"] == RECEIPT and e["detail"].get("operation") == ctx.operation_id
            for e in entries
        )

    def _detail(self, ctx: StepContext, hosts: dict[str, str]) -> dict[str, object]:
        export = exporting.verified_export(self.records, ctx.tenant.id)
        removed = [
            outputs["removed"]
            for step, outputs in ctx.outputs.items()
            if step.startswith(_PREFIX) and "removed" in outputs
        ]
        return {
            "operation": ctx.operation_id,
            "purged_at": self.clock().isoformat(),
            "removed": removed,
            "hostnames": sorted(hosts),
            "key": ctx.outputs.get("purge.shred", {}).get("shredded", ""),
            "export": (
                {
                    "id": export.id,
                    "location": export.location,
                    "checksum": export.checksum,
                    "verified_at": str(export.verified_at),
                }
                if export
                else "none: purged without a verified export (--without-export)"
            ),
        }
