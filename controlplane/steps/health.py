"""Health checks `activate` runs before it flips a tenant active (and `resume` before back).

Each check reads the real thing, the way the tenant will use it: the app role logs in
with its own credentials and sees only its own rows; the namespace and its quota exist
(in render mode: the rendered files hold them); the DNS record exists at the provider
(render mode: `dns.yaml`). A backend that is not configured has no check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from controlplane.engine.steps import StepContext
from controlplane.steps import database, dns, importing
from controlplane.steps import kubernetes as kubernetes_steps

__all__ = ["DatabaseHealth", "DnsHealth", "HealthCheck", "NamespaceHealth", "checks", "problems_of"]

# What the tenant's compute must hold before it takes traffic.
_REQUIRED_KINDS = ("Namespace", "ResourceQuota")


class HealthCheck(Protocol):
    """One check: its name and the problems it finds (empty when healthy)."""

    @property
    def name(self) -> str:
        """What is checked, for messages."""
        ...

    def problems(self, ctx: StepContext) -> list[str]:
        """Problems found now."""
        ...


@dataclass(frozen=True)
class DatabaseHealth:
    """The app role logs in with its own password, is isolated, sees only its own rows."""

    checker: database.IsolationChecker
    data: importing.TenantData | None = None
    name: str = "database"

    def problems(self, ctx: StepContext) -> list[str]:
        where = importing.target_of(ctx)
        if where.private:
            return []  # RDS: the database step checks what Terraform recorded
        found = self.checker.check(ctx.tenant.id, where.target, where.expected)
        if not found and self.data is not None:
            found = self.data.foreign_rows(ctx.tenant.id, where.target, where.expected)
        return found


@dataclass(frozen=True)
class NamespaceHealth:
    """The namespace, its quota and the rest of the compute objects exist as desired."""

    backend: kubernetes_steps.KubernetesBackend
    name: str = "namespace and quota"

    def problems(self, ctx: StepContext) -> list[str]:
        step = kubernetes_steps.ComputeStep(self.backend)
        kinds = {str(m.get("kind")) for m in step.desired(ctx)}
        missing = [f"no {kind} is desired" for kind in _REQUIRED_KINDS if kind not in kinds]
        return missing + step.verify(ctx)


@dataclass(frozen=True)
class DnsHealth:
    """The tenant's record exists at the provider (Cloudflare, or the rendered dns.yaml)."""

    provider: dns.DnsProvider
    name: str = "dns"

    def problems(self, ctx: StepContext) -> list[str]:
        return dns.DnsStep(self.provider).verify(ctx)


def checks(
    *,
    isolation: database.IsolationChecker | None,
    data: importing.TenantData | None,
    kubernetes: kubernetes_steps.KubernetesBackend | None,
    dns_provider: dns.DnsProvider | None,
) -> tuple[HealthCheck, ...]:
    """The checks of the configured backends, cheapest first."""
    found: list[HealthCheck] = []
    if kubernetes is not None:
        found.append(NamespaceHealth(kubernetes))
    if dns_provider is not None:
        found.append(DnsHealth(dns_provider))
    if isolation is not None:
        found.append(DatabaseHealth(isolation, data))
    return tuple(found)


def problems_of(checks_: Sequence[HealthCheck], ctx: StepContext) -> list[str]:
    """Every problem, each prefixed with its check's name."""
    return [f"{check.name}: {problem}" for check in checks_ for problem in check.problems(ctx)]
