"""`database`: the tenant's database through Terraform, by tier.

standard -> `shared-schema` (a schema with forced RLS in the shared Postgres);
enterprise/premium -> `dedicated-db-postgres` (self-hosted) or `dedicated-db-aws` (RDS),
as `platform.databases.dedicated_backend` says.

The fingerprint covers the module inputs and the module's own files, so an unchanged,
verified tenant costs no terraform process at all. `verify` does not trust Terraform's
state: it connects as the tenant's app role and checks isolation on the server itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from controlplane.engine.steps import Change, StepContext, StepResult, fingerprint_of
from controlplane.models.operations import StepName
from controlplane.models.platform import PlatformConfig, Tier
from controlplane.models.tenants import Tenant
from controlplane.models.terraform import TerraformUnit

__all__ = [
    "REAPPLY",
    "DatabaseStep",
    "IsolationChecker",
    "PlanLike",
    "Provisioner",
    "names",
    "unit_for",
]

SHARED = "shared-schema"
DEDICATED_POSTGRES = "dedicated-db-postgres"
DEDICATED_AWS = "dedicated-db-aws"
# Re-running the idempotent SQL is how a Postgres module re-converges after drift.
_NAME = StepName("database")
REAPPLY = {SHARED: ("terraform_data.grants",), DEDICATED_POSTGRES: ("terraform_data.grants",)}


class PlanLike(Protocol):
    """A plan summary: (action, resource address) per change."""

    @property
    def changes(self) -> tuple[tuple[str, str], ...]: ...


class Provisioner(Protocol):
    """Terraform workspaces per tenant (`drivers.terraform.Terraform`)."""

    def module_version(self, module: str) -> str:
        """Content hash of a module."""
        ...

    def plan(self, unit: TerraformUnit) -> PlanLike:
        """What apply would change."""
        ...

    def apply(self, unit: TerraformUnit, *, replace: Sequence[str] = ()) -> dict[str, str]:
        """Converge; return the module's outputs."""
        ...

    def outputs(self, unit: TerraformUnit) -> dict[str, str] | None:
        """Outputs recorded in state, None when never applied."""
        ...

    def destroy(self, unit: TerraformUnit) -> None:
        """Remove what the workspace manages."""
        ...


class IsolationChecker(Protocol):
    """Connects as the tenant's app role (`drivers.postgres.TenantDatabases`)."""

    def check(self, tenant_id: str, target: str, expected: Mapping[str, str]) -> list[str]:
        """Isolation problems, empty when healthy."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """Observe in bulk: inside the block, checks read one catalog query per server."""
        ...


def names(tenant: Tenant) -> dict[str, str]:
    """SQL names of a tenant: schema/database `tenant_<id>` ('-' -> '_'), and its roles."""
    base = "tenant_" + tenant.id.replace("-", "_")
    return {"schema": base, "owner_role": f"{base}_owner", "app_role": f"{base}_app"}


def unit_for(tenant: Tenant, platform: PlatformConfig) -> TerraformUnit:
    """The module, target and inputs of a tenant's database (pure)."""
    sql = names(tenant)
    profile = platform.tiers[tenant.tier].database
    common: dict[str, object] = {
        "tenant_id": tenant.id,
        "schema_name": sql["schema"],
        "owner_role": sql["owner_role"],
        "app_role": sql["app_role"],
        "connection_limit": profile.connection_limit,
        "statement_timeout": profile.statement_timeout,
    }
    if tenant.tier is Tier.STANDARD:
        return TerraformUnit(tenant.id, SHARED, "shared", tenant.region, common)
    protect = tenant.lifecycle.deletion_protection
    if platform.databases.dedicated_backend == "postgres":
        inputs = {**common, "database_name": sql["schema"], "deletion_protection": protect}
        return TerraformUnit(tenant.id, DEDICATED_POSTGRES, "dedicated", tenant.region, inputs)
    return TerraformUnit(
        tenant.id, DEDICATED_AWS, "aws", tenant.region, _aws_inputs(tenant, platform)
    )


def _aws_inputs(tenant: Tenant, platform: PlatformConfig) -> dict[str, object]:
    settings = platform.databases
    premium = tenant.tier is Tier.PREMIUM
    inputs: dict[str, object] = {
        "tenant_id": tenant.id,
        "tier": tenant.tier.value,
        "database_name": names(tenant)["schema"],
        "cluster_cidr": settings.cluster_cidr,
        "instance_class": settings.instance_class,
        "backup_retention_days": settings.backup_retention_days,
        "deletion_protection": tenant.lifecycle.deletion_protection,
    }
    if premium:
        inputs.update(
            vpc_cidr=settings.premium_vpc_cidr,
            availability_zones=list(settings.availability_zones),
            custom_key_store_id=settings.custom_key_store_id,
        )
    else:
        inputs.update(vpc_id=settings.vpc_id, subnet_ids=list(settings.subnet_ids))
    return inputs


def _expected(unit: TerraformUnit) -> dict[str, str]:
    """What verify expects to find, from the module inputs alone."""
    expected = {"schema": str(unit.inputs["schema_name"]), "app_role": str(unit.inputs["app_role"])}
    if unit.module == DEDICATED_POSTGRES:
        expected["database"] = str(unit.inputs["database_name"])
    return expected


@dataclass(frozen=True)
class DatabaseStep:
    """Provision (Terraform) and verify (as the tenant) the tenant's database."""

    provisioner: Provisioner
    checker: IsolationChecker
    name: StepName = _NAME

    def fingerprint(self, ctx: StepContext) -> str:
        unit = unit_for(ctx.tenant, ctx.platform)
        version = self.provisioner.module_version(unit.module)
        return fingerprint_of(
            self.name, unit.module, unit.target, unit.region, unit.inputs, version
        )

    def plan(self, ctx: StepContext) -> list[Change]:
        unit = unit_for(ctx.tenant, ctx.platform)
        summary = self.provisioner.plan(unit)
        changes = [
            Change(action, f"database/{address}", unit.module)
            for action, address in summary.changes
        ]
        return changes or [Change("noop", f"database/{unit.module}")]

    def apply(self, ctx: StepContext) -> StepResult:
        unit = unit_for(ctx.tenant, ctx.platform)
        outputs = self.provisioner.apply(unit, replace=REAPPLY.get(unit.module, ()))
        return StepResult({"module": unit.module, "target": unit.target, **outputs})

    def verify(self, ctx: StepContext) -> list[str]:
        unit = unit_for(ctx.tenant, ctx.platform)
        if unit.module == DEDICATED_AWS:
            # RDS is private to the platform VPC: check what Terraform recorded.
            outputs = self.provisioner.outputs(unit)
            if not outputs or not outputs.get("instance_id"):
                return [f"no RDS instance recorded for tenant '{unit.tenant_id}'"]
            return []
        return self.checker.check(unit.tenant_id, unit.target, _expected(unit))

    def destroy(self, ctx: StepContext) -> None:
        self.provisioner.destroy(unit_for(ctx.tenant, ctx.platform))
