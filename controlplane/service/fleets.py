"""A directory of tenant files as one fleet: what is missing, what is observed, the guard.

`apply -f DIR`, `plan`, `diff` and the reconciler read a directory as the desired state
of every tenant recorded from it. A tenant recorded from a file directly in DIR (the
files `-f DIR` reads: `*.yaml`/`*.yml`, not subfolders) whose id no file of the run
declares any more is *missing*: marked `pending-deletion`, deleted only by `--prune`.
Tenants recorded from anywhere else (another directory, a file given by name) are outside
the run and never missing, so applying a subset of the fleet cannot delete the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.config.loading import TenantSource
from controlplane.errors import ConflictError
from controlplane.models.platform import Tier
from controlplane.state.reconciles import Control

__all__ = [
    "GONE",
    "BlastRadiusError",
    "Options",
    "Scope",
    "downgrades",
    "guard",
    "missing",
    "observed",
]

# Statuses of tenants already on their way out: never missing, never deleted again.
GONE = frozenset({"deleting", "deleted", "restoring", "purging", "purged"})
_RANK = {tier.value: rank for rank, tier in enumerate(Tier)}


@dataclass(frozen=True)
class Scope:
    """The directories a run reads: the tenants recorded from files directly in them."""

    folders: frozenset[Path] = frozenset()

    @classmethod
    def of(cls, paths: Iterable[Path]) -> Scope:
        """The directories among the `-f` paths (a file given by name scopes nothing)."""
        return cls(frozenset(p.resolve() for p in paths if p.is_dir()))

    def holds(self, source_file: str) -> bool:
        """Whether a tenant recorded from `source_file` belongs to this run."""
        return bool(source_file) and Path(source_file).parent in self.folders


@dataclass(frozen=True)
class Options:
    """How `apply` runs a fleet.

    `max_deletions` None means the platform's `max_deletions`; `skip` are tenants the
    reconciler is backing off from (reported, not touched).
    """

    parallel: int = 4
    reconcile: bool = False
    prune: bool = False
    max_deletions: int | None = None
    scope: Scope = field(default_factory=Scope)
    skip: frozenset[str] = frozenset()


class BlastRadiusError(ConflictError):
    """A run would delete or downgrade more tenants than allowed (exit 4, nothing changed)."""


def missing(
    rows: Mapping[str, Mapping[str, Any]], sources: Sequence[TenantSource], scope: Scope
) -> list[str]:
    """Recorded tenants of the scope that no file of the run declares any more."""
    declared = {s.tenant.id for s in sources}
    return sorted(
        tenant_id
        for tenant_id, row in rows.items()
        if tenant_id not in declared
        and row["status"] not in GONE
        and scope.holds(str(row["source_file"] or ""))
    )


def downgrades(
    rows: Mapping[str, Mapping[str, Any]], sources: Sequence[TenantSource]
) -> dict[str, tuple[str, str]]:
    """Tenants whose file asks for a lower tier than recorded: {id: (from, to)}."""
    found: dict[str, tuple[str, str]] = {}
    for source in sources:
        row = rows.get(source.tenant.id)
        if row is not None and _RANK[source.tenant.tier.value] < _RANK[str(row["tier"])]:
            found[source.tenant.id] = (str(row["tier"]), source.tenant.tier.value)
    return found


def observed(sources: Sequence[TenantSource], controls: Mapping[str, Control]) -> set[str]:
    """Tenants apply and the reconciler only observe: `lifecycle.management: observe`
    in the file, or paused with `tenantctl pause-reconcile`."""
    paused = {tenant_id for tenant_id, c in controls.items() if c.paused}
    return paused | {s.tenant.id for s in sources if s.tenant.lifecycle.management == "observe"}


def guard(deleting: Sequence[str], downgrading: Iterable[str], limit: int) -> None:
    """Refuse a run that would delete or downgrade more than `limit` tenants.

    Raises:
        BlastRadiusError: (exit 4) naming every tenant it would have deleted or downgraded.
    """
    downgrading = sorted(downgrading)
    count = len(deleting) + len(downgrading)
    if count <= limit:
        return
    parts = []
    if deleting:
        parts.append(f"delete {', '.join(deleting)}")
    if downgrading:
        parts.append(f"downgrade {', '.join(downgrading)}")
    msg = (
        f"refusing to {' and '.join(parts)}: {count} tenant(s) over the blast-radius limit of "
        f"{limit} — nothing was changed; if this is intended, re-run with --max-deletions "
        f"{count} (or raise platform.max_deletions), else restore the tenant files"
    )
    raise BlastRadiusError(msg)
