"""`record` and `activate`: the first and last steps of onboarding.

`record` writes the tenant into the state store and reserves its hostnames (the
collision check across tenants happens in that same transaction); `activate` runs the
health checks (`steps.health`) and flips the tenant to `active` once they all pass.

A suspended tenant is held: `record` refuses to go on (nothing else runs), so an
`apply` of its file never resumes it silently; `tenantctl resume` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controlplane.engine.steps import Change, StepContext, StepResult, fingerprint_of
from controlplane.engine.stores import TenantRegistry
from controlplane.errors import ConflictError, NotFoundError, StepFailedError
from controlplane.models.operations import StepName
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.steps import health

__all__ = ["HELD", "ActivateStep", "RecordStep", "desired_hosts", "spec_fingerprint"]

# Statuses `record` refuses to move on from: the tenant was (or is being) suspended or
# offboarded (only `resume` / `restore` bring it back).
HELD = frozenset(
    {"suspending", "suspended", "deleting", "deleted", "restoring", "purging", "purged"}
)
_SUSPENDED = frozenset({"suspending", "suspended"})


def spec_fingerprint(tenant: Tenant, platform: PlatformConfig) -> str:
    """Fingerprint of everything that decides a tenant's infrastructure (the blast-radius
    limit decides none: changing it must not make the fleet look changed)."""
    settings = platform.model_dump(mode="json", exclude={"max_deletions"})
    return fingerprint_of(tenant.model_dump(mode="json"), settings)


def desired_hosts(tenant: Tenant, platform: PlatformConfig) -> dict[str, str]:
    """Hostnames the tenant owns, with their kind."""
    hosts = {f"{tenant.subdomain}.{platform.base_domain}": "subdomain"}
    hosts.update(dict.fromkeys(tenant.domains.custom, "custom"))
    return hosts


@dataclass(frozen=True)
class RecordStep:
    """Validate-and-reserve: the tenant row plus its hostnames."""

    registry: TenantRegistry
    name: StepName = field(default=StepName("record"))

    def fingerprint(self, ctx: StepContext) -> str:
        return fingerprint_of(
            self.name, ctx.tenant.model_dump(mode="json"), ctx.platform.base_domain
        )

    def plan(self, ctx: StepContext) -> list[Change]:
        try:
            row = self.registry.get_tenant(ctx.tenant.id)
        except NotFoundError:
            return [Change("create", f"tenant/{ctx.tenant.id}", "record tenant, reserve hostnames")]
        if row["spec"] != ctx.tenant.model_dump(mode="json"):
            return [Change("update", f"tenant/{ctx.tenant.id}", "new spec generation")]
        return [Change("noop", f"tenant/{ctx.tenant.id}")]

    def apply(self, ctx: StepContext) -> StepResult:
        _refuse_if_held(ctx.tenant.id, self._recorded(ctx.tenant.id))
        row = self.registry.record_tenant(
            ctx.tenant.model_dump(mode="json"),
            fingerprint=spec_fingerprint(ctx.tenant, ctx.platform),
            source_file=ctx.source_file,
            hosts=desired_hosts(ctx.tenant, ctx.platform),
        )
        return StepResult({"generation": str(row["generation"])})

    def verify(self, ctx: StepContext) -> list[str]:
        try:
            row = self.registry.get_tenant(ctx.tenant.id)
        except NotFoundError:
            return [f"tenant '{ctx.tenant.id}' is not recorded"]
        problems = []
        if row["status"] in HELD:
            problems.append(f"tenant is {row['status']}")
        if row["spec"] != ctx.tenant.model_dump(mode="json"):
            problems.append("recorded spec differs from the file")
        missing = set(desired_hosts(ctx.tenant, ctx.platform)) - set(
            self.registry.hosts_of(ctx.tenant.id)
        )
        if missing:
            problems.append(f"hostnames not reserved: {', '.join(sorted(missing))}")
        return problems

    def destroy(self, ctx: StepContext) -> None:
        self.registry.set_status(ctx.tenant.id, "deleted")

    def _recorded(self, tenant_id: str) -> Mapping[str, Any] | None:
        try:
            return self.registry.get_tenant(tenant_id)
        except NotFoundError:
            return None


def _refuse_if_held(tenant_id: str, row: Mapping[str, Any] | None) -> None:
    """ConflictError for a held tenant: only `resume` (or `restore`) brings it back."""
    if row is None or row["status"] not in HELD:
        return
    if row["status"] not in _SUSPENDED:
        msg = (
            f"tenant '{tenant_id}' is {row['status']}: apply leaves it so — "
            f"`tenantctl restore {tenant_id}` brings a deleted tenant back, "
            f"`tenantctl delete {tenant_id}` / `purge` finish offboarding it"
        )
        raise ConflictError(msg)
    msg = (
        f"tenant '{tenant_id}' is {row['status']}: apply leaves it so — run "
        f"`tenantctl resume {tenant_id}` first (or `tenantctl suspend {tenant_id}` to "
        "finish suspending it)"
    )
    raise ConflictError(msg)


@dataclass(frozen=True)
class ActivateStep:
    """Run the health checks, then mark the tenant active at the spec it converged to."""

    registry: TenantRegistry
    checks: tuple[health.HealthCheck, ...] = ()
    name: StepName = field(default=StepName("activate"))

    def fingerprint(self, ctx: StepContext) -> str:
        return fingerprint_of(self.name, spec_fingerprint(ctx.tenant, ctx.platform))

    def plan(self, ctx: StepContext) -> list[Change]:
        if self.verify(ctx):
            return [Change("update", f"tenant/{ctx.tenant.id}", "status -> active")]
        return [Change("noop", f"tenant/{ctx.tenant.id}")]

    def apply(self, ctx: StepContext) -> StepResult:
        problems = health.problems_of(self.checks, ctx)
        if problems:
            # Usually a lag (DNS, a namespace being created): retried, then final.
            msg = f"health checks failed, tenant not activated: {'; '.join(problems)}"
            raise StepFailedError(msg, retryable=True)
        self.registry.set_status(
            ctx.tenant.id, "active", applied_fingerprint=spec_fingerprint(ctx.tenant, ctx.platform)
        )
        return StepResult({"health": ", ".join(c.name for c in self.checks) or "none"})

    def verify(self, ctx: StepContext) -> list[str]:
        try:
            row = self.registry.get_tenant(ctx.tenant.id)
        except NotFoundError:
            return [f"tenant '{ctx.tenant.id}' is not recorded"]
        if row["status"] != "active":
            return [f"status is {row['status']}, not active"]
        if row["applied_fingerprint"] != spec_fingerprint(ctx.tenant, ctx.platform):
            return ["active at an older spec"]
        return []

    def destroy(self, ctx: StepContext) -> None:
        self.registry.set_status(ctx.tenant.id, "suspended")
