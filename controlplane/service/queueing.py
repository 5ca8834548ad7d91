"""Distributed execution: operations queued in the state store, run by `tenantctl worker`.

`enqueue` records an operation (status `queued`) and its procrastinate job in one
transaction; `operations.run` calls it instead of running when the session queues
(`apply --async`, the API with queued submissions). A worker's job calls `perform`, which
runs the operation once under the tenant's lease (`Operator.run`, never `drive`: a
worker does not sleep) and queues it again for when it can go on: a step's
`next_attempt_at`, a lease another holder has, or a stop in between steps.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from pathlib import Path

import procrastinate

from controlplane.config.loading import TenantSource
from controlplane.engine.operating import Outcome, Request
from controlplane.engine.running import utc_now
from controlplane.errors import ControlPlaneError
from controlplane.models.operations import UNFINISHED, OperationStatus
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.service.sessions import Session
from controlplane.state import lookups, queue
from controlplane.state.store import Store
from controlplane.steps.records import spec_fingerprint

__all__ = [
    "QUEUE",
    "RETRY_LATER",
    "TASK",
    "enqueue",
    "perform",
    "recover_stalled",
    "translated",
    "worker_app",
]

log = logging.getLogger(__name__)

# A tenant another process holds, or a store that did not answer, is tried again this
# much later (a dead holder's lease is taken over at once on its host, else when it expires).
RETRY_LATER = timedelta(seconds=5)
_LATER = "retry-later"
_UNFINISHED = frozenset(s.value for s in UNFINISHED)
TASK = queue.TASK
QUEUE = queue.QUEUE
# The queue's connection failures as a state store outage (exit 5), for the worker.
translated = queue.translated


def enqueue(session: Session, kind: str, source: TenantSource, platform: PlatformConfig) -> Outcome:
    """Queue flow `kind` for one tenant; the outcome is `queued` with the operation's id.

    Raises:
        ConflictError: the tenant has another operation waiting in the queue.
    """
    ctx = session.context(source, platform)
    context = {
        **session.recorded_context(ctx.source_file, platform),
        # A worker on any host runs the operation from its record alone.
        "spec": source.tenant.model_dump(mode="json"),
        "actor": session.store.actor,
    }
    operation = session.store.queue_operation(
        source.tenant.id, kind, spec_fingerprint(source.tenant, platform), context=context
    )
    return Outcome(
        source.tenant.id,
        OperationStatus.QUEUED.value,
        operation.id,
        f"queued for the workers: GET /v1/operations/{operation.id}",
    )


def perform(session: Session, operation_id: str) -> Outcome:
    """Run a queued operation as far as it goes now (the job of `tenantctl worker`).

    Acts as the actor who queued it (the audit log names them); the session's holder
    (this worker) holds the lease. An operation finished or superseded meanwhile is
    left as it is; one that a newer operation of the tenant replaces is superseded
    (outcome `unchanged`).
    """
    row = lookups.operation(session.store.engine, operation_id)
    tenant_id = str(row["tenant_id"])
    if row["status"] not in _UNFINISHED:
        return Outcome(tenant_id, str(row["status"]), operation_id, "nothing left to do")
    context = dict(row["context"])
    platform = PlatformConfig.model_validate(context["platform"])
    source = TenantSource(Tenant.model_validate(context["spec"]), str(context["source_file"]), "")
    actor = str(context.get("actor") or session.store.actor)
    here = dataclasses.replace(
        session.at(Path(str(context["out_dir"]))),
        store=Store(session.store.engine, actor=actor, lease_seconds=session.store.lease_seconds),
    )
    try:
        request = Request(
            str(row["kind"]),
            here.context(source, platform),
            here.steps(str(row["kind"]), platform),
            fingerprint=str(row["spec_fingerprint"]),
            context=context,
            # Checked under the lease: a newer operation of the tenant (queued while this
            # job was being taken) supersedes this one, and its own job runs next.
            done_already=lambda: here.store.supersede_if_newer(operation_id),
        )
        outcome = here.operator().run(request)
    except ControlPlaneError as exc:  # before the operation began: its drivers, the store
        if not exc.retryable:
            here.store.fail_queued(operation_id, exc.message)
            failed = OperationStatus.FAILED.value
            return Outcome(tenant_id, failed, operation_id, exc.message, exc.exit_code)
        outcome = Outcome(tenant_id, _LATER, operation_id, exc.message, exc.exit_code)
    again = _when_again(outcome)
    if again is not None and not here.store.requeue(operation_id, tenant_id, at=again):
        log.info("operation %s: the tenant's waiting job carries on", operation_id)
    return outcome


def _when_again(outcome: Outcome) -> datetime | None:
    """When a job must come back for the operation, None when it is over."""
    if outcome.status == OperationStatus.WAITING:
        return outcome.retry_at
    if outcome.status in ("locked", _LATER):
        return utc_now() + RETRY_LATER
    if outcome.status == OperationStatus.INTERRUPTED:
        return utc_now()  # this worker stops: another one goes on
    return None


def worker_app(session: Session) -> procrastinate.App:
    """The procrastinate app of a worker process, on the session's state store."""
    return queue.worker_app(session.store.engine.url)


async def recover_stalled(app: procrastinate.App, *, stalled_after: float) -> list[int]:
    """Requeue the jobs of workers that died (no heartbeat for `stalled_after` s)."""
    return await queue.recover_stalled(app, stalled_after=stalled_after)
