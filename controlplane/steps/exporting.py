"""`export`: a verified, encrypted export of the tenant's data.

The step dumps the tenant's schema (standard) or database (enterprise, premium) with
`pg_dump -Fc` and writes it with a manifest (spec, hostnames, sizes, sha256) to the
export store, encrypted under the tenant's own key; then reads both back, checks the
dump's checksum against the manifest and what was written, lists the archive with
`pg_restore --list`, and only then records the export as verified in the state store.

Writing and checking are one step on purpose: a check that fails (or a crash before the
record) makes the next attempt write the export again, instead of re-checking a bad copy
forever. An export's id is the operation that takes it, so a re-run rewrites the same
export (never a second one) and a later operation never mistakes an older export for
its own.
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

__all__ = ["NAME", "Dumper", "ExportRecords", "ExportStep", "ExportStore", "verified_export"]

NAME = StepName("export")


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
class ExportStep:
    """Dump the tenant's data, write it with its manifest, read both back, check, record."""

    dumps: Dumper
    exports: ExportStore
    records: ExportRecords
    registry: TenantRegistry
    clock: Callable[[], datetime]
    name: StepName = field(default=NAME)

    def fingerprint(self, ctx: StepContext) -> str:
        return fingerprint_of(self.name, ctx.tenant.id, ctx.operation_id)

    def plan(self, ctx: StepContext) -> list[Change]:
        detail = "pg_dump -Fc + manifest, encrypted, read back and verified"
        return [Change("create", f"export/{ctx.tenant.id}", detail)]

    def apply(self, ctx: StepContext) -> StepResult:
        where = importing.target_of(ctx)
        if where.private:
            msg = (
                f"tenant '{ctx.tenant.id}': an RDS database cannot be exported from here (the "
                "platform VPC is private) — export it from inside the VPC"
            )
            raise ConflictError(msg)
        dump = self.dumps.dump(where.target, where.expected)
        created_at = self.clock()
        manifest = {
            "tenant_id": ctx.tenant.id,
            "export_id": ctx.operation_id,
            "created_at": created_at.isoformat(),
            "tier": ctx.tenant.tier.value,
            "database": where.expected,
            "spec": ctx.tenant.model_dump(mode="json"),
            "hostnames": self.registry.hosts_of(ctx.tenant.id),
            "files": {DUMP: {"format": "pg_dump -Fc", "size": len(dump), "sha256": _sha256(dump)}},
        }
        body = json.dumps(manifest, indent=2, sort_keys=True).encode()
        # The dump first: a manifest that exists names a dump written in full.
        location = self.exports.write(ctx.tenant.id, ctx.operation_id, {DUMP: dump, MANIFEST: body})
        entries = self._check(ctx, _sha256(dump), where.expected["schema"])
        verified_at = self.clock()
        self.records.record_export(
            ExportRecord(
                id=ctx.operation_id,
                tenant_id=ctx.tenant.id,
                location=location,
                checksum=_sha256(dump),
                size=len(dump),
                created_at=created_at,
                verified_at=verified_at,
            )
        )
        return StepResult(
            {
                "location": location,
                "checksum": _sha256(dump),
                "size": str(len(dump)),
                "entries": str(entries),
                "verified_at": verified_at.isoformat(),
            }
        )

    def _check(self, ctx: StepContext, checksum: str, schema: str) -> int:
        """Read the export back: manifest and dump agree with what was written, and
        pg_restore can list the archive, which holds the tenant's schema."""
        manifest = json.loads(self._read(ctx, MANIFEST))
        dump = self._read(ctx, DUMP)
        if not checksum == _sha256(dump) == manifest["files"][DUMP]["sha256"]:
            msg = f"export {ctx.operation_id}: the dump read back does not match its checksum"
            raise StepFailedError(msg, retryable=True)  # rewritten by the next attempt
        entries = self.dumps.contents(dump)
        if not any(schema in entry for entry in entries):
            msg = f"export {ctx.operation_id}: the dump does not hold schema {schema}"
            raise StepFailedError(msg)
        return len(entries)

    def verify(self, ctx: StepContext) -> list[str]:
        ours = [e for e in self.records.exports_of(ctx.tenant.id) if e.id == ctx.operation_id]
        if not ours or ours[0].verified_at is None:
            return [f"export {ctx.operation_id} of tenant '{ctx.tenant.id}' is not verified"]
        return []

    def destroy(self, ctx: StepContext) -> None:
        del ctx  # an export outlives its tenant: purge shreds its key instead

    def _read(self, ctx: StepContext, name: str) -> bytes:
        data = self.exports.read(ctx.tenant.id, ctx.operation_id, name)
        if data is None:
            msg = f"export {ctx.operation_id} of tenant '{ctx.tenant.id}': {name} is missing"
            raise StepFailedError(msg, retryable=True)
        return data
