"""Onboarding: the ordered steps that take a tenant file to a running tenant.

Each backend's steps run when its driver is given; the optional `import` step
(`data_import`) is not built yet.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.engine.steps import Step
from controlplane.engine.stores import TenantRegistry
from controlplane.steps import database, dns, records
from controlplane.steps import kubernetes as kubernetes_steps

__all__ = ["KIND", "Dependencies", "steps"]

KIND = "onboard"


@dataclass(frozen=True)
class Dependencies:
    """What the onboarding steps talk to (drivers satisfy the engine's Protocols)."""

    registry: TenantRegistry
    # The database step runs when both are given (Terraform workspaces + isolation checks).
    provisioner: database.Provisioner | None = None
    isolation: database.IsolationChecker | None = None
    # Kubernetes (server-side apply, or files in render mode): compute, config and network
    # run when given; `passwords` lets live mode write the tenant's database Secret.
    kubernetes: kubernetes_steps.KubernetesBackend | None = None
    passwords: kubernetes_steps.PasswordSource | None = None
    # Cloudflare (live) or the dns.yaml writer (render); the dns step runs when given.
    dns_provider: dns.DnsProvider | None = None


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
    ordered.append(records.ActivateStep(deps.registry))
    return ordered
