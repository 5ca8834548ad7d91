"""`record` and `activate`: the first and last steps of onboarding.

`record` writes the tenant into the state store and reserves its hostnames (the
collision check across tenants happens in that same transaction); `activate` flips the
tenant to `active` once every earlier step has converged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controlplane.engine.steps import Change, StepContext, StepResult, fingerprint_of
from controlplane.engine.stores import TenantRegistry
from controlplane.errors import NotFoundError
from controlplane.models.operations import StepName
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant

__all__ = ["ActivateStep", "RecordStep", "desired_hosts", "spec_fingerprint"]


def spec_fingerprint(tenant: Tenant, platform: PlatformConfig) -> str:
    """Fingerprint of everything that decides a tenant's infrastructure."""
    return fingerprint_of(tenant.model_dump(mode="json"), platform.model_dump(mode="json"))


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


@dataclass(frozen=True)
class ActivateStep:
    """Mark the tenant active at the spec it converged to."""

    registry: TenantRegistry
    name: StepName = field(default=StepName("activate"))

    def fingerprint(self, ctx: StepContext) -> str:
        return fingerprint_of(self.name, spec_fingerprint(ctx.tenant, ctx.platform))

    def plan(self, ctx: StepContext) -> list[Change]:
        if self.verify(ctx):
            return [Change("update", f"tenant/{ctx.tenant.id}", "status -> active")]
        return [Change("noop", f"tenant/{ctx.tenant.id}")]

    def apply(self, ctx: StepContext) -> StepResult:
        self.registry.set_status(
            ctx.tenant.id, "active", applied_fingerprint=spec_fingerprint(ctx.tenant, ctx.platform)
        )
        return StepResult()

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
