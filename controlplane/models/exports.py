"""Exports of a tenant's data: what the state store records of each one.

An export is one `pg_dump -Fc` of the tenant's schema (standard) or database (enterprise,
premium) plus a manifest, written encrypted to the export location and read back before
it counts: `verified_at` is set only after the checksum and `pg_restore --list` passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["DUMP", "MANIFEST", "ExportRecord"]

# The two files of an export, by name under its folder or prefix.
DUMP = "data.dump"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ExportRecord:
    """One export: its id is the operation that took it."""

    id: str
    tenant_id: str
    location: str
    checksum: str  # sha256 of the dump (hex)
    size: int
    created_at: datetime
    verified_at: datetime | None = None
