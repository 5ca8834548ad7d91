"""`export.write` and `export.verify`: a verified, encrypted export of the tenant's data.

`export.write` dumps the tenant's schema (standard) or database (enterprise, premium)
with `pg_dump -Fc` and writes it with a manifest (spec, hostnames, sizes, sha256) to
the export store, encrypted under the tenant's own key. `export.verify` reads both back,
checks the dump's checksum against the manifest and what was written, lists the archive
with `pg_restore --list`, and only then records the export as verified in the state store.

An export's id is the operation that takes it, so a re-run after a crash rewrites the
same export (never a second one) and a later operation never mistakes an older export
for its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from controlplane.engine.steps import Change, StepContext, StepResult, fingerprint_of
from controlplane.engine.stores import TenantRegistry
from controlplane.errors import ConflictError, StepFailedError
from controlplane.models.exports import DUMP, MANIFEST, ExportRecord
from controlplane.models.operations import StepName
from controlplane.steps import importing

__all__ = [
    "WRITE",
    "Dumper",
    "ExportRecords",
    "ExportStore",
    "ExportVerifyStep",
    "ExportWriteStep",
    "verified_export",
]

WRITE = StepName("export.write")


class Dumper(Protocol):
    """pg_dump and pg_restore (`drivers.postgres_dump.Dumps`)."""

    def dump(self, target: str, expected: Mapping[str, str]) -> bytes:
        """`pg_dump -Fc` of the tenant's database (`database` in expected) or schema."""
        ...

    def contents(self, dump: bytes) -> list[str]:
        """The archive's entries (`pg_restore --list`); raises if it is not readable."""
        ...


class ExportStore(Protocol):
    """Where exports go, encrypted under the tenant's key (`drivers.exports`)."""

    def write(self, tenant_id: str, export_id: str, files: Mapping[str, bytes]) -> str:
        """Store the files (in order) and return the export's location."""
        ...

    def read(self, tenant_id: str, export_id: str, name: str) -> bytes | None:
        """One file back, decrypted; None when it is not there."""
        ...

    def shred(self, tenant_id: str) -> str:
        """Destroy (or schedule the deletion of) the tenant's key; say what went."""
        ...

    def shred_problems(self, tenant_id: str) -> list[str]:
        """What remains of the tenant's key (empty once shredded)."""
        ...


class ExportRecords(Protocol):
    """The state store's record of exports (`state.store.Store`)."""

    def record_export(self, export: ExportRecord) -> None:
        """Insert or replace one export's record."""
        ...

    def exports_of(self, tenant_id: str) -> list[ExportRecord]:
        """The tenant's exports, newest first."""
        ...


def verified_export(records: ExportRecords, tenant_id: str) -> ExportRecord | None:
    """The tenant's newest verified export, if any."""
    return next((e for e in records.exports_of(tenant_id) if e.verified_at), None)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ExportWriteStep:
    """Dump the tenant's data and write it, with its manifest, to the export store."""

    dumps: Dumper
    exports: ExportStore
    registry: TenantRegistry
    clock: Callable[[], datetime]
    name: StepName = field(default=WRITE)

    def fingerprint(self, ctx: StepContext) -> str:
        return fingerprint_of(self.name, ctx.tenant.id, ctx.operation_id)

    def plan(self, ctx: StepContext) -> list[Change]:
        return [Change("create", f"export/{ctx.tenant.id}", "pg_dump -Fc + manifest, encrypted")]

    def apply(self, ctx: StepContext) -> StepResult:
        where = importing.target_of(ctx)
        if where.private:
            msg = (
                f"tenant '{ctx.tenant.id}': an RDS database cannot be exported from here (the "
                "platform VPC is private) — export it from inside the VPC"
            )
            raise ConflictError(msg)
        dump = self.dumps.dump(where.target, where.expected)
        checksum = _sha256(dump)
        manifest = {
            "tenant_id": ctx.tenant.id,
            "export_id": ctx.operation_id,
            "created_at": self.clock().isoformat(),
            "tier": ctx.tenant.tier.value,
            "database": where.expected,
            "spec": ctx.tenant.model_dump(mode="json"),
            "hostnames": self.registry.hosts_of(ctx.tenant.id),
            "files": {DUMP: {"format": "pg_dump -Fc", "size": len(dump), "sha256": checksum}},
        }
        body = json.dumps(manifest, indent=2, sort_keys=True).encode()
        # The dump first: a manifest that exists names a dump written in full.
        location = self.exports.write(ctx.tenant.id, ctx.operation_id, {DUMP: dump, MANIFEST: body})
        return StepResult({"location": location, "checksum": checksum, "size": str(len(dump))})

    def verify(self, ctx: StepContext) -> list[str]:
        if self.exports.read(ctx.tenant.id, ctx.operation_id, MANIFEST) is None:
            return [f"export {ctx.operation_id} of tenant '{ctx.tenant.id}' has no manifest"]
        return []

    def destroy(self, ctx: StepContext) -> None:
        del ctx  # an export outlives its tenant: purge shreds its key instead


@dataclass(frozen=True)
class ExportVerifyStep:
    """Read the export back, check it, and record it as verified."""

    dumps: Dumper
    exports: ExportStore
    records: ExportRecords
    clock: Callable[[], datetime]
    name: StepName = field(default=StepName("export.verify"))

    def fingerprint(self, ctx: StepContext) -> str:
        return fingerprint_of(self.name, ctx.tenant.id, ctx.operation_id)

    def plan(self, ctx: StepContext) -> list[Change]:
        return [Change("create", f"export/{ctx.tenant.id}", "read back, checksum, pg_restore")]

    def apply(self, ctx: StepContext) -> StepResult:
        written = ctx.outputs.get(WRITE, {})
        manifest = json.loads(self._read(ctx, MANIFEST))
        dump = self._read(ctx, DUMP)
        listed = manifest["files"][DUMP]
        checksum = _sha256(dump)
        if checksum != listed["sha256"] or checksum != written.get("checksum", checksum):
            msg = f"export {ctx.operation_id}: the dump read back does not match its checksum"
            raise StepFailedError(msg)
        entries = self.dumps.contents(dump)
        schema = importing.target_of(ctx).expected["schema"]
        if not any(schema in entry for entry in entries):
            msg = f"export {ctx.operation_id}: the dump does not hold schema {schema}"
            raise StepFailedError(msg)
        verified_at = self.clock()
        self.records.record_export(
            ExportRecord(
                id=ctx.operation_id,
                tenant_id=ctx.tenant.id,
                location=written.get("location", ""),
                checksum=checksum,
                size=len(dump),
                created_at=datetime.fromisoformat(manifest["created_at"]),
                verified_at=verified_at,
            )
        )
        return StepResult(
            {
                "location": written.get("location", ""),
                "checksum": checksum,
                "entries": str(len(entries)),
                "verified_at": verified_at.isoformat(),
            }
        )

    def verify(self, ctx: StepContext) -> list[str]:
        ours = [e for e in self.records.exports_of(ctx.tenant.id) if e.id == ctx.operation_id]
        if not ours or ours[0].verified_at is None:
            return [f"export {ctx.operation_id} of tenant '{ctx.tenant.id}' is not verified"]
        return []

    def destroy(self, ctx: StepContext) -> None:
        del ctx

    def _read(self, ctx: StepContext, name: str) -> bytes:
        data = self.exports.read(ctx.tenant.id, ctx.operation_id, name)
        if data is None:
            msg = f"export {ctx.operation_id} of tenant '{ctx.tenant.id}': {name} is missing"
            raise StepFailedError(msg)
        return data
