"""The data steps of a tier change: the tenant's tables move to the new tier's database.

The context's tenant is the *new* spec; where the data is now comes from the recorded
spec, read once by `migration.source` and kept in its outputs (the record is only
rewritten at the cut-over). In order:

- `migration.source`: the source and target locations, the method and the data to move.
- `migration.target`: a stale copy at the target (a copy retired by an earlier tier
  change, or left by a rolled-back one) is dropped; the `database` step then provisions
  the target afresh through Terraform.
- `migration.copy`: DDL, then the rows online (logical replication), writes still on.
- `migration.freeze`: the app role may no longer write the source; its sessions end.
- `migration.catch-up`: the last changes and the sequences reach the target; the
  subscription, slots and publication are dropped.
- `migration.verify`: rows and an order-independent checksum per table, both sides. A
  difference rolls back (`RolledBackError`): replication dropped, source writable again,
  target destroyed, the source's own Terraform re-applied; nothing of the tenant moved.
- (`record`, `compute`, `config`, `network`: the cut-over, by the onboarding steps.)
- `migration.resume`: writes resume on the target; the source stays read-only (retired)
  until `lifecycle.retention_days` have passed. The freeze is measured here.

Source and target the same location (enterprise <-> premium on one self-hosted server)
moves nothing: the data steps say `in place` and return.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from controlplane.engine.running import utc_now
from controlplane.engine.steps import Change, StepContext, StepResult, fingerprint_of
from controlplane.engine.stores import TenantRegistry
from controlplane.errors import ConflictError, ControlPlaneError, RolledBackError
from controlplane.models.migrations import Location, TableSum
from controlplane.models.operations import StepName
from controlplane.models.platform import Tier
from controlplane.models.tenants import Tenant
from controlplane.steps import database, importing

__all__ = [
    "IN_PLACE",
    "RESUME",
    "SOURCE",
    "CatchUpStep",
    "CopyStep",
    "DataMover",
    "FreezeStep",
    "ResumeStep",
    "SourceStep",
    "TargetStep",
    "TenantTables",
    "VerifyStep",
    "location_of",
    "moved",
    "retired",
]

SOURCE = StepName("migration.source")
TARGET = StepName("migration.target")
COPY = StepName("migration.copy")
FREEZE = StepName("migration.freeze")
CATCH_UP = StepName("migration.catch-up")
VERIFY = StepName("migration.verify")
RESUME = StepName("migration.resume")
IN_PLACE = "in place"


class TenantTables(Protocol):
    """A tenant's tables at one location (`drivers.replication.Replication`)."""

    def tables(self, where: Location) -> dict[str, int]:
        """Rows per table (empty when the location does not exist)."""
        ...

    def checksums(self, where: Location) -> dict[str, TableSum]:
        """Rows and an order-independent checksum per table."""
        ...

    def set_writes(self, where: Location, *, allowed: bool) -> None:
        """Freeze the app role's writes (ending its sessions), or allow them again."""
        ...

    def writes_allowed(self, where: Location) -> bool:
        """Whether the app role may write there."""
        ...

    def exists(self, where: Location) -> bool:
        """Whether the location's schema (and database) exists."""
        ...

    def drop(self, where: Location) -> None:
        """Drop a stale copy at the location."""
        ...


class DataMover(Protocol):
    """Copies a schema between locations (`drivers.replication.Replication`)."""

    def method(self, source: Location) -> str:
        """`logical replication`, or why dump/restore inside the freeze instead."""
        ...

    def start(self, source: Location, target: Location) -> dict[str, str]:
        """DDL and the rows copied (and, logically, streaming); safe to run again."""
        ...

    def catch_up(self, source: Location, target: Location) -> dict[str, str]:
        """With the source frozen: the last changes and sequences, then `stop`."""
        ...

    def stop(self, source: Location, target: Location) -> None:
        """Drop subscription, slots and publication (each if there)."""
        ...

    def retire(self, where: Location) -> None:
        """A retired copy in its own database: the app role may not connect any more."""
        ...


def moved(outputs: Mapping[str, str]) -> str:
    """What a finished tier change reports, from its `migration.resume` outputs."""
    return (
        f"{outputs['from_tier']} -> {outputs['to_tier']}, {outputs['rows']} row(s) moved by "
        f"{outputs['method']}; writes frozen {float(outputs['freeze_seconds']):.2f} s"
    )


def location_of(tenant: Tenant, ctx: StepContext) -> Location:
    """Where `tenant`'s tables are by its spec (the `database` step's naming)."""
    where = importing.target_of(dataclasses.replace(ctx, tenant=tenant))
    if where.private:
        msg = (
            f"tenant '{tenant.id}': its {tenant.tier.value} database is an RDS instance the "
            "control plane cannot reach from here: a tier change to or from it is not "
            "supported yet — run it from inside the platform VPC"
        )
        raise ConflictError(msg)
    expected = where.expected
    return Location(
        where.target, expected["schema"], expected["app_role"], expected.get("database", "")
    )


def _dump(where: Location) -> str:
    return json.dumps(dataclasses.asdict(where), sort_keys=True)


def _load(text: str) -> Location:
    return Location(**json.loads(text))


@dataclass(frozen=True)
class _Migration:
    """What `migration.source` decided, as later steps read it from its outputs."""

    source: Location
    target: Location
    from_tier: str
    method: str

    @classmethod
    def of(cls, ctx: StepContext) -> _Migration:
        outputs = ctx.outputs.get(SOURCE)
        if not outputs:
            msg = f"tenant '{ctx.tenant.id}': {SOURCE} has not run in this operation"
            raise ControlPlaneError(msg)
        return cls(
            _load(outputs["source"]),
            _load(outputs["target"]),
            outputs["from_tier"],
            outputs["method"],
        )

    @property
    def moves(self) -> bool:
        return self.method != IN_PLACE

    def source_tenant(self, ctx: StepContext) -> Tenant:
        """The tenant as recorded before the change (its old tier)."""
        return ctx.tenant.model_copy(update={"tier": Tier(self.from_tier)})


def _fingerprint(name: str, ctx: StepContext) -> str:
    return fingerprint_of(name, ctx.tenant.id, ctx.tenant.tier.value, ctx.outputs.get(SOURCE))


def _unrun(ctx: StepContext, name: str) -> list[str]:
    """Every tier change runs each data step itself: never skipped for an earlier one's
    record (within one operation the runner skips a done step by its fingerprint)."""
    return [] if ctx.outputs.get(name) is not None else [f"{name} has not run in this operation"]


@dataclass(frozen=True)
class SourceStep:
    """Where the data is (recorded spec) and where it goes (new spec); nothing changes."""

    registry: TenantRegistry
    tables: TenantTables
    mover: DataMover
    name: StepName = SOURCE

    def _recorded(self, ctx: StepContext) -> Tenant:
        return Tenant.model_validate(self.registry.get_tenant(ctx.tenant.id)["spec"])

    def decide(self, ctx: StepContext) -> dict[str, str]:
        """The migration's source, target, method and tables (reads only)."""
        recorded = self._recorded(ctx)
        if recorded.tier is ctx.tenant.tier:
            msg = f"tenant '{ctx.tenant.id}' is already {ctx.tenant.tier.value}: no tier change"
            raise ConflictError(msg)
        source, target = location_of(recorded, ctx), location_of(ctx.tenant, ctx)
        method = IN_PLACE if source == target else self.mover.method(source)
        rows = self.tables.tables(source)
        return {
            "source": _dump(source),
            "target": _dump(target),
            "from_tier": recorded.tier.value,
            "to_tier": ctx.tenant.tier.value,
            "method": method,
            "tables": json.dumps(rows, sort_keys=True),
            "rows": str(sum(rows.values())),
        }

    def fingerprint(self, ctx: StepContext) -> str:
        return fingerprint_of(self.name, ctx.tenant.id, ctx.tenant.tier.value)

    def plan(self, ctx: StepContext) -> list[Change]:
        decided = ctx.outputs.get(self.name) or self.decide(ctx)
        tables = json.loads(decided["tables"])
        detail = f"{decided['from_tier']} -> {decided['to_tier']}, {decided['method']}"
        changes = [Change("update", f"tenant/{ctx.tenant.id}", f"tier change: {detail}")]
        if decided["method"] != IN_PLACE:
            changes += [
                Change("create", f"data/{table}", f"{rows} row(s) to move")
                for table, rows in tables.items()
            ]
        return changes

    def apply(self, ctx: StepContext) -> StepResult:
        return StepResult(self.decide(ctx))

    def verify(self, ctx: StepContext) -> list[str]:
        return _unrun(ctx, self.name)

    def destroy(self, ctx: StepContext) -> None:
        del ctx


@dataclass(frozen=True)
class TargetStep:
    """No stale copy at the target before the `database` step provisions it afresh."""

    tables: TenantTables
    name: StepName = TARGET

    def fingerprint(self, ctx: StepContext) -> str:
        return _fingerprint(self.name, ctx)

    def plan(self, ctx: StepContext) -> list[Change]:
        del ctx
        return [Change("noop", "data/target", "a stale copy there is dropped first")]

    def apply(self, ctx: StepContext) -> StepResult:
        migration = _Migration.of(ctx)
        stale = migration.moves and self.tables.exists(migration.target)
        if stale:
            self.tables.drop(migration.target)
        return StepResult({"dropped": str(stale).lower()})

    def verify(self, ctx: StepContext) -> list[str]:
        return _unrun(ctx, self.name)

    def destroy(self, ctx: StepContext) -> None:
        del ctx


@dataclass(frozen=True)
class CopyStep:
    """DDL and rows to the target, online: writes keep going to the source."""

    mover: DataMover
    tables: TenantTables
    name: StepName = COPY

    def fingerprint(self, ctx: StepContext) -> str:
        return _fingerprint(self.name, ctx)

    def plan(self, ctx: StepContext) -> list[Change]:
        return [Change("create", "data/copy", _Migration.of(ctx).method)]

    def apply(self, ctx: StepContext) -> StepResult:
        migration = _Migration.of(ctx)
        if not migration.moves:
            return StepResult({"method": IN_PLACE})
        return StepResult(self.mover.start(migration.source, migration.target))

    def verify(self, ctx: StepContext) -> list[str]:
        migration = _Migration.of(ctx)
        if migration.moves and not self.tables.exists(migration.target):
            return [f"no {migration.target.schema} at the target"]
        return _unrun(ctx, self.name)

    def destroy(self, ctx: StepContext) -> None:
        migration = _Migration.of(ctx)
        if migration.moves:
            self.mover.stop(migration.source, migration.target)


@dataclass(frozen=True)
class FreezeStep:
    """The app role stops writing the source (read-only, sessions ended): the freeze."""

    tables: TenantTables
    clock: Callable[[], datetime] = utc_now
    name: StepName = FREEZE

    def fingerprint(self, ctx: StepContext) -> str:
        return _fingerprint(self.name, ctx)

    def plan(self, ctx: StepContext) -> list[Change]:
        source = _Migration.of(ctx).source
        return [Change("update", f"role/{source.app_role}", f"read-only on {source.schema}")]

    def apply(self, ctx: StepContext) -> StepResult:
        migration = _Migration.of(ctx)
        frozen_at = self.clock()
        if migration.moves:
            self.tables.set_writes(migration.source, allowed=False)
        return StepResult({"frozen_at": frozen_at.isoformat()})

    def verify(self, ctx: StepContext) -> list[str]:
        migration = _Migration.of(ctx)
        if migration.moves and self.tables.writes_allowed(migration.source):
            return [f"{migration.source.app_role} may still write {migration.source.schema}"]
        return _unrun(ctx, self.name)

    def destroy(self, ctx: StepContext) -> None:
        migration = _Migration.of(ctx)
        self.tables.set_writes(migration.source, allowed=True)


@dataclass(frozen=True)
class CatchUpStep:
    """The last changes and the sequences reach the target; replication is dropped."""

    mover: DataMover
    name: StepName = CATCH_UP

    def fingerprint(self, ctx: StepContext) -> str:
        return _fingerprint(self.name, ctx)

    def plan(self, ctx: StepContext) -> list[Change]:
        del ctx
        return [Change("update", "data/catch-up", "last changes and sequences")]

    def apply(self, ctx: StepContext) -> StepResult:
        migration = _Migration.of(ctx)
        if not migration.moves:
            return StepResult({"method": IN_PLACE})
        return StepResult(self.mover.catch_up(migration.source, migration.target))

    def verify(self, ctx: StepContext) -> list[str]:
        return _unrun(ctx, self.name)

    def destroy(self, ctx: StepContext) -> None:
        del ctx


@dataclass(frozen=True)
class VerifyStep:
    """Every table equal on both sides (rows, checksum), else roll the tier change back."""

    tables: TenantTables
    mover: DataMover
    provisioner: database.Provisioner
    name: StepName = VERIFY

    def fingerprint(self, ctx: StepContext) -> str:
        return _fingerprint(self.name, ctx)

    def plan(self, ctx: StepContext) -> list[Change]:
        del ctx
        return [Change("noop", "data/verify", "rows and checksum per table, both sides")]

    def _differences(self, migration: _Migration) -> tuple[list[str], dict[str, TableSum]]:
        with ThreadPoolExecutor(max_workers=2) as pool:
            source_sums, target_sums = pool.map(
                self.tables.checksums, (migration.source, migration.target)
            )
        found = [
            f"{table}: {want.rows} row(s) in the source, "
            + (f"{have.rows} in the target" if have else "missing in the target")
            + ("" if have is None or have.rows != want.rows else " (checksums differ)")
            for table, want in source_sums.items()
            if (have := target_sums.get(table)) != want
        ]
        return found, source_sums

    def apply(self, ctx: StepContext) -> StepResult:
        migration = _Migration.of(ctx)
        if not migration.moves:
            return StepResult({"tables": "{}", "rows": "0"})
        found, sums = self._differences(migration)
        if found:
            self.roll_back(ctx, migration)
            msg = (
                f"tenant '{ctx.tenant.id}': verification failed, tier change rolled back (the "
                f"tenant stays {migration.from_tier} on its database, writable): "
                + "; ".join(found)
            )
            raise RolledBackError(msg)
        listed = {t: {"rows": s.rows, "checksum": s.checksum} for t, s in sums.items()}
        rows = sum(s.rows for s in sums.values())
        return StepResult({"tables": json.dumps(listed, sort_keys=True), "rows": str(rows)})

    def roll_back(self, ctx: StepContext, migration: _Migration) -> None:
        """Back to the source: replication off, writes on, target gone, source re-applied."""
        self.mover.stop(migration.source, migration.target)
        self.tables.set_writes(migration.source, allowed=True)
        unprotected = _unprotected(ctx.tenant)
        target = database.unit_for(unprotected, ctx.platform)
        if target.module == database.DEDICATED_POSTGRES:
            self.provisioner.apply(target)  # deletion protection off in its state first
        self.provisioner.destroy(target)
        source = database.unit_for(migration.source_tenant(ctx), ctx.platform)
        self.provisioner.apply(source, replace=database.REAPPLY.get(source.module, ()))

    def verify(self, ctx: StepContext) -> list[str]:
        return _unrun(ctx, self.name)

    def destroy(self, ctx: StepContext) -> None:
        del ctx


def _unprotected(tenant: Tenant) -> Tenant:
    lifecycle = tenant.lifecycle.model_copy(update={"deletion_protection": False})
    return tenant.model_copy(update={"lifecycle": lifecycle})


@dataclass(frozen=True)
class ResumeStep:
    """Writes resume on the target; the source is kept read-only until it is due."""

    tables: TenantTables
    mover: DataMover
    clock: Callable[[], datetime] = utc_now
    name: StepName = RESUME

    def fingerprint(self, ctx: StepContext) -> str:
        return _fingerprint(self.name, ctx)

    def plan(self, ctx: StepContext) -> list[Change]:
        days = ctx.tenant.lifecycle.retention_days
        return [Change("update", "data/source", f"kept read-only for {days} day(s)")]

    def apply(self, ctx: StepContext) -> StepResult:
        migration = _Migration.of(ctx)
        now = self.clock()
        frozen_at = datetime.fromisoformat(ctx.outputs[FREEZE]["frozen_at"])
        outputs = {
            "from_tier": migration.from_tier,
            "to_tier": ctx.tenant.tier.value,
            "method": migration.method,
            "rows": ctx.outputs.get(VERIFY, {}).get("rows", "0"),
            "freeze_seconds": f"{(now - frozen_at).total_seconds():.3f}",
        }
        if not migration.moves:
            return StepResult(outputs)
        self.tables.set_writes(migration.target, allowed=True)
        self.tables.set_writes(migration.source, allowed=False)
        self.mover.retire(migration.source)
        retire_after = now + timedelta(days=ctx.tenant.lifecycle.retention_days)
        outputs.update(retired=_dump(migration.source), retire_after=retire_after.isoformat())
        return StepResult(outputs)

    def verify(self, ctx: StepContext) -> list[str]:
        migration = _Migration.of(ctx)
        if migration.moves and not self.tables.writes_allowed(migration.target):
            return [f"{migration.target.app_role} may not write {migration.target.schema}"]
        return _unrun(ctx, self.name)

    def destroy(self, ctx: StepContext) -> None:
        del ctx


def retired(outputs: Mapping[str, str]) -> tuple[Location, Tier, datetime] | None:
    """The copy a `migration.resume` record retired: where, its tier, and when it is due."""
    if "retired" not in outputs:
        return None
    due = datetime.fromisoformat(outputs["retire_after"]).astimezone(UTC)
    return _load(outputs["retired"]), Tier(outputs["from_tier"]), due
