"""Tier change (upgrade and downgrade alike): the tenant and its data move to a new tier.

`migration.source` -> `migration.target` -> `database` (the new tier's, through
Terraform) -> `migration.copy` (online) -> `migration.freeze` -> `migration.catch-up` ->
`migration.verify` (a difference rolls everything back) -> `record` (the new spec) ->
`compute`, `config`, `network` (placement, Secret/ConfigMap, policies of the new tier) ->
`migration.resume` (writes resume on the target; the source is retired read-only) ->
`dns` -> `activate` (health checks on the new database). Writes stop only from `freeze`
to `resume`. See `steps.migration` and docs/lifecycle.md.
"""

from __future__ import annotations

from controlplane.engine.steps import Step
from controlplane.errors import ControlPlaneError
from controlplane.flows import onboarding
from controlplane.flows.dependencies import Dependencies
from controlplane.steps import database, dns, migration, records
from controlplane.steps import kubernetes as kubernetes_steps

__all__ = ["KIND", "steps"]

KIND = "tier-change"


def steps(deps: Dependencies) -> list[Step]:
    """The tier-change steps, in order."""
    provisioner, isolation, tables, mover = (
        deps.provisioner,
        deps.isolation,
        deps.tables,
        deps.mover,
    )
    if provisioner is None or isolation is None or tables is None or mover is None:
        msg = f"flow '{KIND}' needs the database drivers (Terraform, tenant data, replication)"
        raise ControlPlaneError(msg)
    ordered: list[Step] = [
        migration.SourceStep(deps.registry, tables, mover),
        migration.TargetStep(tables),
        database.DatabaseStep(provisioner, isolation),
        migration.CopyStep(mover, tables),
        migration.FreezeStep(tables),
        migration.CatchUpStep(mover),
        migration.VerifyStep(tables, mover, provisioner),
        records.RecordStep(deps.registry),
    ]
    if deps.kubernetes is not None:
        ordered.extend(kubernetes_steps.tenant_steps(deps.kubernetes, deps.passwords))
    ordered.append(migration.ResumeStep(tables, mover))
    if deps.dns_provider is not None:
        ordered.append(dns.DnsStep(deps.dns_provider))
    ordered.append(onboarding.activate(deps))
    return ordered
