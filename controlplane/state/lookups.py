"""Reads the HTTP API needs beyond `store.Store`: pages, one operation, counts, routing rows.

Kept apart from `store.py` (the engine's storage) because nothing here is part of an
operation: these are read-only views for shells, `/readyz`, `/metrics` and the resolver.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on

from controlplane.errors import NotFoundError, PostgresError
from controlplane.state import database
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
    "Convergence",
    "Durations",
    "RoutingRow",
    "audit_page",
    "budget_tokens",
    "connection",
    "convergence",
    "count_operations",
    "count_repairs",
    "count_step_failures",
    "count_tenants",
    "operation",
    "operation_durations",
    "routing_rows",
    "schema_revision",
    "step_durations",
    "tenant_page",
]

Row = dict[str, Any]


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
    with connection(engine) as conn:
        return database.revision(conn), database.HEAD


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
    """One operation with its steps in order, and the exit code its outcome means.

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
        exit_code = 0
        if found["status"] == "failed":  # its `operation.failed` entry names the exit code
            exit_code = (
                conn.execute(
                    sa.select(audit_log.c.detail["exit_code"].as_integer())
                    .where(
                        audit_log.c.tenant_id == found["tenant_id"],
                        audit_log.c.action == "operation.failed",
                        audit_log.c.detail["operation"].as_string() == operation_id,
                    )
                    .order_by(audit_log.c.id.desc())
                    .limit(1)
                ).scalar()
                or 6
            )
    return {**dict(found), "steps": [dict(s) for s in steps], "exit_code": exit_code}


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


def count_repairs(engine: sa.Engine, action: str) -> dict[str, int]:
    """Drift problems repaired, by step: the `problems` of every `action` audit entry, each
    `"<step>: <what was wrong>"` (step names hold no colon). The audit log only grows, so
    the counts only grow."""
    problems = audit_log.c.detail["problems"]
    problem = sa.func.jsonb_array_elements_text(problems).table_valued("value").lateral()
    step = sa.func.split_part(problem.c.value, ":", 1)
    query = (
        sa.select(step, sa.func.count())
        .select_from(audit_log.join(problem, sa.true()))
        .where(audit_log.c.action == action)
        .group_by(step)
    )
    with connection(engine) as conn:
        return {str(name): int(n) for name, n in conn.execute(query).all()}


@dataclass(frozen=True)
class Durations:
    """A histogram of recorded durations: how many took at most each bound, sum, count."""

    at_most: list[int]
    total_seconds: float
    count: int


def _histograms(
    seconds: sa.ColumnElement[Any],
    keys: list[sa.ColumnElement[Any]],
    query: sa.Select[Any],
    bounds: list[float],
) -> sa.Select[Any]:
    counts = [sa.func.count().filter(seconds <= bound) for bound in bounds]
    return query.with_only_columns(
        *keys, *counts, sa.func.coalesce(sa.func.sum(seconds), 0.0), sa.func.count()
    ).group_by(*keys)


def _by_key(
    engine: sa.Engine, query: sa.Select[Any], width: int, bounds: list[float]
) -> dict[tuple[str, ...], Durations]:
    with connection(engine) as conn:
        rows = conn.execute(query).all()
    return {
        tuple(row[:width]): Durations(list(row[width : width + len(bounds)]), *row[-2:])
        for row in rows
    }


def operation_durations(engine: sa.Engine, bounds: list[float]) -> dict[tuple[str, ...], Durations]:
    """Finished operations' durations (creation to finish) by (kind,)."""
    seconds = sa.extract("epoch", operations.c.finished_at - operations.c.created_at)
    finished = sa.select(operations).where(operations.c.finished_at.is_not(None))
    query = _histograms(seconds, [operations.c.kind], finished, bounds)
    return _by_key(engine, query, 1, bounds)


def step_durations(engine: sa.Engine, bounds: list[float]) -> dict[tuple[str, ...], Durations]:
    """Finished step records' durations (first start to finish) by (operation kind, step)."""
    steps = operation_steps
    seconds = sa.extract("epoch", steps.c.finished_at - steps.c.started_at)
    finished = (
        sa.select(steps)
        .select_from(steps.join(operations))
        .where(steps.c.finished_at.is_not(None), steps.c.started_at.is_not(None))
    )
    query = _histograms(seconds, [operations.c.kind, steps.c.name], finished, bounds)
    return _by_key(engine, query, 2, bounds)


@dataclass(frozen=True)
class Convergence:
    """One tenant's last converging operation and whether drift it had is still unrepaired."""

    tenant_id: str
    last_converged_at: float | None  # epoch seconds
    drifted: bool


def convergence(
    engine: sa.Engine, converging: tuple[str, ...], repairing: str
) -> list[Convergence]:
    """Per recorded tenant: when an operation of a `converging` kind last succeeded, and
    whether its newest such operation is a `repairing` one that has not succeeded (drift
    found and not repaired yet)."""
    ops = operations
    of_kinds = ops.c.kind.in_(converging)
    newest = (
        sa.select(ops.c.tenant_id, ops.c.kind, ops.c.status)
        .where(of_kinds)
        .order_by(ops.c.tenant_id, ops.c.created_at.desc())
        .ext(distinct_on(ops.c.tenant_id))
        .subquery()
    )
    last = (
        sa.select(ops.c.tenant_id, sa.func.max(ops.c.finished_at).label("at"))
        .where(of_kinds, ops.c.status == "succeeded")
        .group_by(ops.c.tenant_id)
        .subquery()
    )
    query = (
        sa.select(tenants.c.id, sa.extract("epoch", last.c.at), newest.c.kind, newest.c.status)
        .select_from(
            tenants.outerjoin(last, last.c.tenant_id == tenants.c.id).outerjoin(
                newest, newest.c.tenant_id == tenants.c.id
            )
        )
        .order_by(tenants.c.id)
    )
    with connection(engine) as conn:
        rows = conn.execute(query).all()
    return [
        Convergence(
            tenant_id,
            None if at is None else float(at),
            kind == repairing and status != "succeeded",
        )
        for tenant_id, at, kind, status in rows
    ]


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
