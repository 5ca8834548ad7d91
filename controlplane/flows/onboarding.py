"""Onboarding: the ordered steps that take a tenant file to a running tenant.

Each backend's steps run when its driver is given; `import` (initial data, a no-op for a
tenant without `data_import`) runs right before `activate`, whose health checks cover
every configured backend. Drift repair (`reconcile`) runs the same steps: each one
skips itself when its last result still verifies.
"""

from __future__ import annotations

from controlplane.engine.steps import Step
from controlplane.flows.dependencies import Dependencies
from controlplane.steps import database, dns, health, importing, records
from controlplane.steps import kubernetes as kubernetes_steps

__all__ = ["KIND", "RECONCILE", "activate", "steps"]

KIND = "onboard"
RECONCILE = "reconcile"


def steps(deps: Dependencies) -> list[Step]:
    """The onboarding steps, in order."""
    ordered: list[Step] = [records.RecordStep(deps.registry)]
    if deps.provisioner is not None and deps.isolation is not None:
        ordered.append(database.DatabaseStep(deps.provisioner, deps.isolation))
    if deps.kubernetes is not None:
        ordered.extend(kubernetes_steps.tenant_steps(deps.kubernetes, deps.passwords))
    # dns comes after compute, config and network, right before activate.
    if deps.dns_provider is not None:
        ordered.append(dns.DnsStep(deps.dns_provider))
    if deps.tenant_data is not None and deps.data_sources is not None:
        ordered.append(importing.ImportStep(deps.data_sources, deps.tenant_data))
    ordered.append(activate(deps))
    return ordered


def activate(deps: Dependencies) -> records.ActivateStep:
    """`activate` with the health checks of every configured backend."""
    checks = health.checks(
        isolation=deps.isolation,
        data=deps.tenant_data,
        kubernetes=deps.kubernetes,
        dns_provider=deps.dns_provider,
    )
    return records.ActivateStep(deps.registry, checks)
