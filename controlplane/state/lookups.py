"""Reads the HTTP API needs beyond `store.Store`: pages, one operation, counts, routing rows.

Kept apart from `store.py` (the engine's storage) because nothing here is part of an
operation: these are read-only views for shells, `/readyz`, `/metrics` and the resolver.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects.postgresql import distinct_on

from controlplane.errors import NotFoundError, PostgresError
from controlplane.state.tables import (
    audit_log,
    operation_steps,
    operations,
    request_budgets,
    tenant_hosts,
    tenants,
)

__all__ = [
    "AuditFilter",
    "RoutingRow",
    "audit_page",
    "budget_tokens",
    "connection",
    "count_operations",
    "count_step_failures",
    "count_tenants",
    "operation",
    "routing_rows",
    "schema_revision",
    "tenant_page",
]

Row = dict[str, Any]
_MIGRATIONS = Path(__file__).parent / "migrations"


@contextmanager
def connection(engine: sa.Engine, *, write: bool = False) -> Iterator[sa.Connection]:
    """A connection (a transaction when `write`); an unreachable store is an outage (exit 5)."""
    try:
        with engine.begin() if write else engine.connect() as conn:
            yield conn
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        shown = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
        msg = (
            f"the state store at {shown} is unreachable: {reason} — check that it runs "
            "(TENANTCTL_DATABASE_URL), then re-run: work resumes"
        )
        raise PostgresError(msg, retryable=True) from exc


def schema_revision(engine: sa.Engine) -> tuple[str | None, str | None]:
    """(current, head) Alembic revisions of the state store."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with connection(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision(), head


def tenant_page(
    engine: sa.Engine, filters: Mapping[str, str | None], *, after: str, limit: int
) -> list[Row]:
    """Tenants by id after `after`, at most `limit`, with `tier`/`status` filters."""
    query = sa.select(tenants).where(tenants.c.id > after).order_by(tenants.c.id).limit(limit)
    for column in ("tier", "status"):
        if filters.get(column):
            query = query.where(tenants.c[column] == filters[column])
    with connection(engine) as conn:
        return [dict(r) for r in conn.execute(query).mappings().all()]


def operation(engine: sa.Engine, operation_id: str) -> Row:
    """One operation with its steps in order.

    Raises:
        NotFoundError: no operation has this id.
    """
    with connection(engine) as conn:
        found = (
            conn.execute(sa.select(operations).where(operations.c.id == operation_id))
            .mappings()
            .first()
        )
        steps = (
            conn.execute(
                sa.select(operation_steps)
                .where(operation_steps.c.operation_id == operation_id)
                .order_by(operation_steps.c.position)
            )
            .mappings()
            .all()
        )
    if found is None:
        msg = f"no operation '{operation_id}' — the id is in the Location of the 202 response"
        raise NotFoundError(msg)
    return {**dict(found), "steps": [dict(s) for s in steps]}


@dataclass(frozen=True)
class AuditFilter:
    """Which audit entries to return, newest first."""

    tenant_id: str | None = None
    action: str | None = None
    actor: str | None = None
    before: int | None = None  # an entry id: the page continues below it
    limit: int = 100


def audit_page(engine: sa.Engine, wanted: AuditFilter) -> list[Row]:
    """Audit entries matching `wanted`, newest first."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(wanted.limit)
    if wanted.tenant_id:
        query = query.where(audit_log.c.tenant_id == wanted.tenant_id)
    if wanted.action:
        query = query.where(audit_log.c.action == wanted.action)
    if wanted.actor:
        query = query.where(audit_log.c.actor == wanted.actor)
    if wanted.before is not None:
        query = query.where(audit_log.c.id < wanted.before)
    with connection(engine) as conn:
        return [dict(r) for r in conn.execute(query).mappings().all()]


def count_tenants(engine: sa.Engine) -> dict[tuple[str, str], int]:
    """Recorded tenants by (tier, status)."""
    query = sa.select(tenants.c.tier, tenants.c.status, sa.func.count()).group_by(
        tenants.c.tier, tenants.c.status
    )
    with connection(engine) as conn:
        return {(tier, status): n for tier, status, n in conn.execute(query).all()}


def count_operations(engine: sa.Engine) -> dict[tuple[str, str], int]:
    """Recorded operations by (kind, status)."""
    query = sa.select(operations.c.kind, operations.c.status, sa.func.count()).group_by(
        operations.c.kind, operations.c.status
    )
    with connection(engine) as conn:
        return {(kind, status): n for kind, status, n in conn.execute(query).all()}


def count_step_failures(engine: sa.Engine) -> dict[tuple[str, str], int]:
    """Failed step records by (operation kind, step name)."""
    query = (
        sa.select(operations.c.kind, operation_steps.c.name, sa.func.count())
        .select_from(operation_steps.join(operations))
        .where(operation_steps.c.status == "failed")
        .group_by(operations.c.kind, operation_steps.c.name)
    )
    with connection(engine) as conn:
        return {(kind, step): n for kind, step, n in conn.execute(query).all()}


def budget_tokens(engine: sa.Engine) -> dict[str, float]:
    """Tokens left in each shared request budget as of its last use (it refills with time)."""
    query = sa.select(request_budgets.c.name, request_budgets.c.tokens)
    with connection(engine) as conn:
        return {name: float(tokens) for name, tokens in conn.execute(query).all()}


@dataclass(frozen=True)
class RoutingRow:
    """What the resolver answers for one tenant (never a credential)."""

    tenant_id: str
    tier: str
    status: str
    region: str
    features: dict[str, bool]
    database: dict[str, str]
    hosts: tuple[str, ...]


def routing_rows(engine: sa.Engine, tenant_id: str | None = None) -> list[RoutingRow]:
    """Routing context of every tenant (or one), with its hostnames, in two queries."""
    query = sa.select(
        tenants.c.id, tenants.c.tier, tenants.c.status, tenants.c.region, tenants.c.spec
    )
    hosts = sa.select(tenant_hosts.c.tenant_id, tenant_hosts.c.hostname)
    database_step = _latest_database_outputs()
    if tenant_id is not None:
        query = query.where(tenants.c.id == tenant_id)
        hosts = hosts.where(tenant_hosts.c.tenant_id == tenant_id)
        database_step = database_step.where(operation_steps.c.tenant_id == tenant_id)
    with connection(engine) as conn:
        rows = conn.execute(query).all()
        by_tenant: dict[str, list[str]] = {}
        for owner, hostname in conn.execute(hosts).all():
            by_tenant.setdefault(owner, []).append(hostname)
        databases = {owner: dict(outputs) for owner, outputs in conn.execute(database_step).all()}
    return [
        RoutingRow(
            tenant_id=row.id,
            tier=row.tier,
            status=row.status,
            region=row.region,
            features={str(k): bool(v) for k, v in (row.spec.get("features") or {}).items()},
            database=_reference(databases.get(row.id, {})),
            hosts=tuple(sorted(by_tenant.get(row.id, []))),
        )
        for row in rows
    ]


def _latest_database_outputs() -> sa.Select[Any]:
    return (
        sa.select(operation_steps.c.tenant_id, operation_steps.c.outputs)
        .where(operation_steps.c.name == "database", operation_steps.c.status == "done")
        .order_by(operation_steps.c.tenant_id, operation_steps.c.finished_at.desc())
        .ext(distinct_on(operation_steps.c.tenant_id))
    )


def _reference(outputs: Mapping[str, Any]) -> dict[str, str]:
    """Where the tenant's database is (module and target), never its credentials."""
    return {k: str(outputs[k]) for k in ("module", "target") if k in outputs}
