"""Onboarding: the ordered steps that take a tenant file to a running tenant.

Later steps (database, compute, config, network, dns, import) slot in between
`record` and `activate` as their drivers arrive.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.engine.steps import Step
from controlplane.engine.stores import TenantRegistry
from controlplane.steps import records

__all__ = ["KIND", "Dependencies", "steps"]

KIND = "onboard"


@dataclass(frozen=True)
class Dependencies:
    """What the onboarding steps talk to (drivers satisfy the engine's Protocols)."""

    registry: TenantRegistry


def steps(deps: Dependencies) -> list[Step]:
    """The onboarding steps, in order."""
    return [records.RecordStep(deps.registry), records.ActivateStep(deps.registry)]
