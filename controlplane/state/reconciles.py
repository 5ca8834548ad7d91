"""Per-tenant GitOps bookkeeping: paused reconcile, pending deletion, reconcile backoff.

Kept apart from `store.Store` (the engine's storage): nothing here is part of an
operation. `apply -f DIR` marks tenants whose file disappeared; the reconciler persists
its per-tenant backoff here, so a restarted reconciler respects it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from controlplane.models.operations import AuditEntry
from controlplane.state import lookups
from controlplane.state.store import _insert_audit
from controlplane.state.tables import tenant_reconcile, tenants

__all__ = ["Control", "ReconcileBook"]


@dataclass(frozen=True)
class Control:
    """What the reconciler remembers about one tenant (the defaults for one never seen)."""

    paused: bool = False
    paused_reason: str = ""
    pending_deletion_since: datetime | None = None
    failures: int = 0
    next_attempt_at: datetime | None = None
    last_error: str = ""


class ReconcileBook:
    """Reads and writes of `tenant_reconcile`; every pause and resume is audited."""

    def __init__(self, engine: sa.Engine, *, actor: str) -> None:
        self.engine = engine
        self.actor = actor

    def controls(self, ids: Sequence[str] | None = None) -> dict[str, Control]:
        """Bookkeeping of every tenant that has any (or of `ids`), in one query."""
        query = sa.select(tenant_reconcile)
        if ids is not None:
            query = query.where(tenant_reconcile.c.tenant_id.in_(list(ids)))
        with lookups.connection(self.engine) as conn:
            rows = conn.execute(query).mappings().all()
        return {
            r["tenant_id"]: Control(**{k: v for k, v in r.items() if k != "tenant_id"})
            for r in rows
        }

    def set_paused(self, tenant_id: str, *, paused: bool, reason: str = "") -> None:
        """Pause (observe only) or resume reconciling a recorded tenant, with an audit entry."""
        action = "reconcile.paused" if paused else "reconcile.resumed"
        with lookups.connection(self.engine, write=True) as conn:
            self._upsert(conn, [tenant_id], paused=paused, paused_reason=reason if paused else "")
            _insert_audit(conn, self.actor, AuditEntry(action, tenant_id, {"reason": reason}))

    def mark_pending_deletion(self, missing: Iterable[str], present: Iterable[str]) -> list[str]:
        """Mark `missing` tenants pending deletion (keeping an earlier mark) and clear
        `present` ones; return the tenants newly marked (each audited once)."""
        missing, present = sorted(set(missing)), sorted(set(present))
        with lookups.connection(self.engine, write=True) as conn:
            if present:
                conn.execute(
                    tenant_reconcile.update()
                    .where(tenant_reconcile.c.tenant_id.in_(present))
                    .values(pending_deletion_since=None)
                )
            marked = conn.execute(
                sa.select(tenant_reconcile.c.tenant_id).where(
                    tenant_reconcile.c.tenant_id.in_(missing),
                    tenant_reconcile.c.pending_deletion_since.is_not(None),
                )
            ).scalars()
            new = sorted(set(missing) - set(marked))
            if new:
                self._upsert(conn, new, pending_deletion_since=datetime.now(UTC))
            for tenant_id in new:
                detail = {"reason": "its tenant file is gone; `apply --prune` deletes it"}
                _insert_audit(conn, self.actor, AuditEntry("pending-deletion", tenant_id, detail))
        return new

    def record_failure(self, tenant_id: str, error: str, next_attempt_at: datetime) -> int:
        """Count one more failed reconcile of the tenant; return how many in a row."""
        insert = pg_insert(tenant_reconcile).values(
            tenant_id=tenant_id, failures=1, next_attempt_at=next_attempt_at, last_error=error
        )
        upsert = insert.on_conflict_do_update(
            index_elements=["tenant_id"],
            set_={
                "failures": tenant_reconcile.c.failures + 1,
                "next_attempt_at": insert.excluded.next_attempt_at,
                "last_error": insert.excluded.last_error,
            },
        ).returning(tenant_reconcile.c.failures)
        with lookups.connection(self.engine, write=True) as conn:
            return int(conn.execute(upsert).scalar_one())

    def clear_failures(self, ids: Iterable[str]) -> None:
        """Tenants reconciled fine: their backoff starts over."""
        ids = list(ids)
        if not ids:
            return
        with lookups.connection(self.engine, write=True) as conn:
            conn.execute(
                tenant_reconcile.update()
                .where(tenant_reconcile.c.tenant_id.in_(ids), tenant_reconcile.c.failures > 0)
                .values(failures=0, next_attempt_at=None, last_error="")
            )

    @staticmethod
    def _upsert(conn: sa.Connection, ids: Sequence[str], **values: object) -> None:
        """Set `values` on the rows of recorded tenants `ids`, creating the rows if needed."""
        known = conn.execute(sa.select(tenants.c.id).where(tenants.c.id.in_(list(ids)))).scalars()
        rows = [{"tenant_id": tenant_id, **values} for tenant_id in known]
        if rows:
            insert = pg_insert(tenant_reconcile).values(rows)
            conn.execute(insert.on_conflict_do_update(index_elements=["tenant_id"], set_=values))
