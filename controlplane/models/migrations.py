"""Tier change: where a tenant's tables live, and what a table sums to.

Plain values shared by the migration steps and the replication driver.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Location", "TableSum"]


@dataclass(frozen=True)
class Location:
    """A tenant's tables: a server (`target`, as in the database step), a schema, and its
    own database (`database`) or, when empty, the server's default (the shared) one."""

    target: str
    schema: str
    app_role: str
    database: str = ""


@dataclass(frozen=True)
class TableSum:
    """One table read in full: its rows and an order-independent checksum of them."""

    rows: int
    checksum: str
