"""Offboarding: export, delete, purge and restore, each a list of steps.

- `export`: export (write, read back, verify, record; the tenant stays as it is).
- `delete`: delete.hold (`deleting`) -> the suspend steps' traffic off (ingress, DNS,
  login: no write lands after the export) -> the export -> delete.mark (`deleted`,
  `purge_after = now + lifecycle.retention_days`).
- `purge`: purge.hold (`purging`) -> the onboarding steps' `destroy` in reverse order
  (dns, network, config, compute, database) -> purge.shred (the tenant's key) ->
  purge.receipt (audit receipt, `purged`, hostnames released).
- `restore`: restore.hold (`restoring`, no purge date) -> the resume steps' traffic on
  (login, network, dns) -> activate (health checks, `active`).

Taking traffic off before the export means the export holds every committed row; if the
export fails, the tenant stays held (`deleting`) and `restore` brings it back.
"""

from __future__ import annotations

from controlplane.engine.steps import Step
from controlplane.errors import ControlPlaneError
from controlplane.flows import onboarding, suspending
from controlplane.flows.dependencies import Dependencies
from controlplane.models.operations import StepName
from controlplane.steps import dns, exporting, purging, retention, suspension
from controlplane.steps import kubernetes as kubernetes_steps

__all__ = [
    "DELETE",
    "EXPORT",
    "PURGE",
    "RESTORE",
    "delete_steps",
    "export_steps",
    "purge_steps",
    "restore_steps",
]

EXPORT = "export"
DELETE = "delete"
PURGE = "purge"
RESTORE = "restore"


def _needs(
    deps: Dependencies, kind: str
) -> tuple[exporting.Dumper, exporting.ExportStore, retention.LifecycleRecords]:
    if deps.dumps is None or deps.exports is None or deps.records is None:
        msg = f"flow '{kind}' needs pg_dump, the export store and the state store's records"
        raise ControlPlaneError(msg)
    return deps.dumps, deps.exports, deps.records


def export_steps(deps: Dependencies, kind: str = EXPORT) -> list[Step]:
    """The export step (write, read back, verify, record)."""
    dumps, exports, records = _needs(deps, kind)
    return [exporting.ExportStep(dumps, exports, records, deps.registry, deps.clock)]


def delete_steps(deps: Dependencies) -> list[Step]:
    """The delete steps, in order."""
    _, _, records = _needs(deps, DELETE)
    deleting = frozenset({"deleting", "deleted"})
    return [
        suspension.StatusStep(deps.registry, "deleting", deleting, StepName("delete.hold")),
        *suspending.traffic_off(deps, DELETE),
        *export_steps(deps, DELETE),
        retention.RetentionStep(
            records, deps.clock, "deleted", frozenset({"deleted"}), StepName("delete.mark"), True
        ),
    ]


def purge_steps(deps: Dependencies) -> list[Step]:
    """The purge steps, in order: onboarding's, undone from the last."""
    _, exports, records = _needs(deps, PURGE)
    purging_ = frozenset({"purging", "purged"})
    ordered: list[Step] = [
        suspension.StatusStep(deps.registry, "purging", purging_, StepName("purge.hold"))
    ]
    if deps.dns_provider is not None:
        ordered.append(purging.RemovalStep(dns.DnsStep(deps.dns_provider)))
    if deps.kubernetes is not None:
        steps = kubernetes_steps.tenant_steps(deps.kubernetes)
        ordered.extend(purging.RemovalStep(step) for step in reversed(steps))
    if deps.provisioner is not None:
        ordered.append(purging.DatabaseRemovalStep(deps.provisioner))
    ordered.append(purging.ShredStep(exports))
    ordered.append(purging.ReceiptStep(records, deps.clock))
    return ordered


def restore_steps(deps: Dependencies) -> list[Step]:
    """The restore steps, in order."""
    _, _, records = _needs(deps, RESTORE)
    restoring = frozenset({"restoring", "active"})
    return [
        retention.RetentionStep(
            records, deps.clock, "restoring", restoring, StepName("restore.hold")
        ),
        *suspending.traffic_on(deps, RESTORE),
        onboarding.activate(deps),
    ]
