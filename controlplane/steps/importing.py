"""`import`: the tenant's initial data (`data_import.source`) loaded into its database.

Runs after the Kubernetes and DNS steps, right before `activate`, and only does work for
a tenant with `data_import`. Each file is loaded exactly once although the step runs at
least once: the driver loads a file and writes its row in the tenant's import log in one
transaction, and skips a file the log already holds (refusing one whose bytes changed).
`verify` proves the counts: every file of the source is logged with the number of rows
it holds, and each table has at least as many rows as were imported into it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from controlplane.engine.steps import Change, StepContext, StepResult, fingerprint_of
from controlplane.errors import ConflictError, ControlPlaneError
from controlplane.models.imports import ImportBatch, ImportRecord, SourceFile
from controlplane.models.operations import StepName
from controlplane.resources import imports
from controlplane.steps import database

__all__ = ["DataSource", "ImportStep", "TenantData", "TenantTarget", "target_of"]


class DataSource(Protocol):
    """Reads the files of a source (`drivers.datasources.DataSources`)."""

    def read(self, source: str, base_dir: str) -> list[SourceFile]:
        """Every data file of `source` (relative folders start at `base_dir`), by name."""
        ...


class TenantData(Protocol):
    """The tenant's own data (`drivers.postgres_data.TenantData`)."""

    def load(
        self, tenant_id: str, target: str, expected: Mapping[str, str], batch: ImportBatch
    ) -> ImportRecord:
        """Load one file exactly once (with its import-log row, in one transaction)."""
        ...

    def imported(
        self, tenant_id: str, target: str, expected: Mapping[str, str]
    ) -> dict[str, ImportRecord]:
        """The import log, by file."""
        ...

    def row_counts(
        self, tenant_id: str, target: str, expected: Mapping[str, str], tables: Sequence[str]
    ) -> dict[str, int]:
        """Rows the app role sees per table (-1: no such table)."""
        ...

    def foreign_rows(self, tenant_id: str, target: str, expected: Mapping[str, str]) -> list[str]:
        """Problems: the app role cannot log in, or sees another tenant's rows."""
        ...

    def set_login(self, target: str, app_role: str, *, login: bool) -> None:
        """Let the app role log in, or not (ending its sessions)."""
        ...

    def can_login(self, target: str, app_role: str) -> bool | None:
        """Whether the app role may log in (None: no such role)."""
        ...


@dataclass(frozen=True)
class TenantTarget:
    """Where the tenant's database is: the server (`target`), its names, and the module."""

    target: str
    expected: dict[str, str]
    module: str

    @property
    def private(self) -> bool:
        """RDS sits in the platform VPC: the control plane cannot reach it from here."""
        return self.module == database.DEDICATED_AWS


def target_of(ctx: StepContext) -> TenantTarget:
    """The tenant's database as the `database` step provisions it (pure)."""
    unit = database.unit_for(ctx.tenant, ctx.platform)
    sql_names = database.names(ctx.tenant)
    expected = {"schema": sql_names["schema"], "app_role": sql_names["app_role"]}
    if unit.module != database.SHARED:
        expected["database"] = sql_names["schema"]
    return TenantTarget(unit.target, expected, unit.module)


def _base_dir(ctx: StepContext) -> str:
    return str(Path(ctx.source_file).parent) if ctx.source_file else "."


@dataclass(frozen=True)
class ImportStep:
    """Load the files of `data_import.source`, each exactly once, and verify the counts."""

    sources: DataSource
    data: TenantData
    name: StepName = field(default=StepName("import"))

    def _batches(self, ctx: StepContext) -> list[ImportBatch]:
        if ctx.tenant.data_import is None:
            return []
        files = self.sources.read(ctx.tenant.data_import.source, _base_dir(ctx))
        return [imports.parse(f) for f in files]

    def _where(self, ctx: StepContext) -> TenantTarget:
        where = target_of(ctx)
        if where.private and ctx.tenant.data_import is not None:
            msg = (
                f"tenant '{ctx.tenant.id}': data_import into an RDS database is not supported "
                "yet (the control plane cannot reach the platform VPC) — remove data_import"
            )
            raise ConflictError(msg)
        return where

    def fingerprint(self, ctx: StepContext) -> str:
        source = ctx.tenant.data_import.source if ctx.tenant.data_import else None
        return fingerprint_of(self.name, source, _base_dir(ctx), target_of(ctx).expected)

    def plan(self, ctx: StepContext) -> list[Change]:
        batches = self._batches(ctx)
        if not batches:
            return [Change("noop", f"import/{ctx.tenant.id}")]
        where = self._where(ctx)
        try:
            done = self.data.imported(ctx.tenant.id, where.target, where.expected)
        except ControlPlaneError as exc:
            if exc.retryable:
                raise
            done = {}  # the database or its app role is not there yet: nothing imported
        return [
            Change("noop", f"import/{b.file}")
            if b.file in done
            else Change("create", f"import/{b.file}", f"{len(b.rows)} row(s) into {b.table}")
            for b in batches
        ]

    def apply(self, ctx: StepContext) -> StepResult:
        batches = self._batches(ctx)
        if not batches:
            return StepResult({"files": "[]", "rows": "0"})
        where = self._where(ctx)
        loaded = [self.data.load(ctx.tenant.id, where.target, where.expected, b) for b in batches]
        listed = [
            {"file": r.file, "table": r.table, "rows": r.rows, "sha256": r.checksum} for r in loaded
        ]
        return StepResult({"files": json.dumps(listed), "rows": str(sum(r.rows for r in loaded))})

    def verify(self, ctx: StepContext) -> list[str]:
        batches = self._batches(ctx)
        if not batches:
            return []
        where = self._where(ctx)
        done = self.data.imported(ctx.tenant.id, where.target, where.expected)
        problems = [_logged(b, done.get(b.file)) for b in batches]
        wanted: dict[str, int] = {}
        for batch in batches:
            wanted[batch.table] = wanted.get(batch.table, 0) + len(batch.rows)
        counts = self.data.row_counts(ctx.tenant.id, where.target, where.expected, list(wanted))
        problems += [
            f"table {table}: {counts.get(table, -1)} row(s), {rows} were imported"
            for table, rows in wanted.items()
            if counts.get(table, -1) < rows
        ]
        return [p for p in problems if p]

    def destroy(self, ctx: StepContext) -> None:
        """Nothing of its own: the imported rows go with the tenant's database."""
        del ctx


def _logged(batch: ImportBatch, record: ImportRecord | None) -> str:
    """A problem with one file's import-log row (empty when it matches the file)."""
    if record is None:
        return f"{batch.file} is not imported"
    if record.checksum != batch.checksum:
        return f"{batch.file} changed since it was imported"
    if record.rows != len(batch.rows):
        return f"{batch.file}: {record.rows} row(s) imported, the file has {len(batch.rows)}"
    return ""
