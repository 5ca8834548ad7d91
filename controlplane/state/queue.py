"""The operation queue: procrastinate jobs in the state store, one job per queued operation.

A job only names an operation (`operation_id`); what to run is the operation's record.
Every job of a tenant carries the tenant id as procrastinate `queueing_lock` (at most
one job of a tenant waits in the queue) and as `lock` (at most one runs), and the
operation's own lease keeps any other runner (a CLI `apply`) out as well.

Jobs are deferred on the caller's SQLAlchemy connection, so recording a queued operation
and queueing its job commit together or not at all. Workers use procrastinate's async
psycopg connector (`worker_app`).

A job never goes back to `todo` through procrastinate's retry: with a queueing lock that
collides with a newer job of the same tenant (a unique violation that leaves the job
stuck). A job that must come back later defers a new job instead; if the tenant already
has one waiting, that one runs the tenant's newest operation, which resumes or
supersedes this one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import procrastinate
import sqlalchemy as sa
from procrastinate import exceptions, jobs

from controlplane.errors import ConflictError, PostgresError

__all__ = ["QUEUE", "TASK", "defer", "recover_stalled", "translated", "waiting", "worker_app"]

log = logging.getLogger(__name__)

TASK = "tenantctl.run_operation"
QUEUE = "operations"
# Deferring needs no pool of its own: it runs on the caller's connection.
_DEFERRER = procrastinate.App(connector=procrastinate.SyncPsycopgConnector())


def defer(
    conn: sa.Connection, operation_id: str, tenant_id: str, *, at: datetime | None = None
) -> int:
    """Queue a job for the operation in `conn`'s transaction; return the job id.

    Raises:
        ConflictError: a job of this tenant waits in the queue already (its queueing
            lock is taken; the transaction is aborted and rolls back).
    """
    deferrer = _DEFERRER.configure_task(
        TASK, queue=QUEUE, lock=tenant_id, queueing_lock=tenant_id, schedule_at=at
    )
    job = deferrer.make_new_job(operation_id=operation_id)
    raw = conn.connection.driver_connection
    try:
        return int(_DEFERRER.job_manager.defer_job(job, connection=raw).id or 0)
    except exceptions.AlreadyEnqueued as exc:
        msg = (
            f"tenant '{tenant_id}' has an operation waiting in the queue already — "
            f"wait for it (`tenantctl describe {tenant_id}`), then retry"
        )
        raise ConflictError(msg, retryable=True) from exc


def waiting(conn: sa.Connection, tenant_id: str) -> str | None:
    """The operation whose job waits in the queue for this tenant, if one does."""
    found = conn.execute(
        sa.text(
            "SELECT args->>'operation_id' FROM procrastinate_jobs "
            "WHERE queueing_lock = :tenant AND status = 'todo'"
        ),
        {"tenant": tenant_id},
    ).scalar_one_or_none()
    return None if found is None else str(found)


def worker_app(url: sa.URL) -> procrastinate.App:
    """A procrastinate app on the state store for a worker process (open it to use it)."""
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))


async def recover_stalled(app: procrastinate.App, *, stalled_after: float) -> list[int]:
    """Put jobs of dead workers (no heartbeat for `stalled_after` s) back in the queue.

    A stalled job is retried as it is unless its tenant has a newer job waiting (the
    queueing lock): then it is marked failed and the waiting job carries on. Several
    workers may recover at once: a job another one recovered first is left alone.
    Returns the ids of the jobs put back or given up.
    """
    recovered = []
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after):
        if job.id is None:
            continue
        try:
            try:
                await app.job_manager.retry_job(job)
            except exceptions.UniqueViolation:
                await app.job_manager.finish_job(job, jobs.Status.FAILED, delete_job=False)
        except exceptions.ConnectorException as exc:  # recovered by another worker meanwhile
            log.info("stalled job %s: left to the worker that recovered it: %s", job.id, exc)
            continue
        log.warning("job %s (%s) of a dead worker is back in the queue", job.id, job.lock)
        recovered.append(job.id)
    return recovered


@contextmanager
def translated() -> Iterator[None]:
    """procrastinate's connection failures as the state store outage they are (exit 5)."""
    try:
        yield
    except exceptions.ConnectorException as exc:
        cause = exc.__cause__ or exc
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        msg = (
            f"the worker lost the state store: {reason} — restart it once the store is back "
            "(TENANTCTL_DATABASE_URL); its operations are queued again for the workers"
        )
        raise PostgresError(msg, retryable=True) from exc
