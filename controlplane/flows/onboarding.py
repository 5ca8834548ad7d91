"""Onboarding: the ordered steps that take a tenant file to a running tenant.

Later steps (database, compute, config, network, dns, import) slot in between
`record` and `activate` as their drivers arrive.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.engine.steps import Step
from controlplane.engine.stores import TenantRegistry
from controlplane.steps import database, records

__all__ = ["KIND", "Dependencies", "steps"]

KIND = "onboard"


@dataclass(frozen=True)
class Dependencies:
    """What the onboarding steps talk to (drivers satisfy the engine's Protocols)."""

    registry: TenantRegistry
    # The database step runs when both are given (Terraform workspaces + isolation checks).
    provisioner: database.Provisioner | None = None
    isolation: database.IsolationChecker | None = None


def steps(deps: Dependencies) -> list[Step]:
    """The onboarding steps, in order."""
    ordered: list[Step] = [records.RecordStep(deps.registry)]
    if deps.provisioner is not None and deps.isolation is not None:
        ordered.append(database.DatabaseStep(deps.provisioner, deps.isolation))
    ordered.append(records.ActivateStep(deps.registry))
    return ordered
