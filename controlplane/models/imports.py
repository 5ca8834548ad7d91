"""Initial data import: the files a tenant's `data_import.source` names, and what was loaded.

Plain values shared by the `import` step, the pure parser (`resources.imports`) and the
drivers that read the source (local folder, S3) and write the tenant's database.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ImportBatch", "ImportRecord", "SourceFile"]


@dataclass(frozen=True)
class SourceFile:
    """One file of the source, as read: its name (no folder) and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class ImportBatch:
    """One file parsed into rows of one table (values as text, None for NULL)."""

    file: str
    table: str
    checksum: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str | None, ...], ...]


@dataclass(frozen=True)
class ImportRecord:
    """What the tenant's database says was loaded from one file (its import log row)."""

    file: str
    table: str
    checksum: str
    rows: int
