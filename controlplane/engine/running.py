"""Run an operation's steps in order: skip finished work, record each outcome, retry.

A step's record is written before the next step starts, so a crash at any point
resumes at the first unfinished step. Retry decisions are made here alone, from the
error type; steps never sleep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from controlplane.engine.retrying import RetryPolicy
from controlplane.engine.steps import Step, StepContext, StepResult
from controlplane.engine.stores import LockManager, OperationStore
from controlplane.errors import ControlPlaneError, StepFailedError
from controlplane.models.operations import Lease, StepRecord, StepStatus

__all__ = ["Runner", "StepEvent"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepEvent:
    """Progress notice for shells (status is a StepStatus value or `skipped`)."""

    tenant_id: str
    step: str
    status: str
    message: str = ""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runner:
    """Executes steps for one operation under a held lease."""

    store: OperationStore
    locks: LockManager
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], datetime] = _now
    on_event: Callable[[StepEvent], None] = lambda _event: None

    def run(self, ctx: StepContext, steps: Sequence[Step], lease: Lease) -> Lease:
        """Run `steps` for `ctx.operation_id`; returns the (renewed) lease.

        Raises:
            StepFailedError: a step failed permanently or spent its retries.
            ConflictError: the lease was lost to another holder.
        """
        records = self.store.load_steps(ctx.operation_id)
        outputs: dict[str, dict[str, str]] = {}
        for position, step in enumerate(steps):
            lease = self.locks.renew(lease)
            here = ctx.with_outputs(dict(outputs))
            record = records.get(step.name) or StepRecord(ctx.operation_id, step.name, position)
            record = self._converge(step, here, record, lease)
            outputs[step.name] = dict(record.outputs)
        return lease

    def _converge(
        self, step: Step, ctx: StepContext, record: StepRecord, lease: Lease
    ) -> StepRecord:
        tenant = ctx.tenant.id
        wanted = step.fingerprint(ctx)
        if record.status is StepStatus.DONE and record.fingerprint == wanted:
            self.on_event(StepEvent(tenant, step.name, "skipped", "already done"))
            return record
        previous = self.store.last_done(tenant, step.name)
        if previous is not None and previous.fingerprint == wanted and not step.verify(ctx):
            done = record.evolve(
                status=StepStatus.DONE,
                fingerprint=wanted,
                skipped=True,
                outputs=dict(previous.outputs),
                finished_at=self.clock(),
            )
            self.store.save_step(done, lease)
            self.on_event(StepEvent(tenant, step.name, "skipped", "unchanged and verified"))
            return done
        return self._attempt(step, ctx, record.evolve(fingerprint=wanted), lease)

    def _attempt(
        self, step: Step, ctx: StepContext, record: StepRecord, lease: Lease
    ) -> StepRecord:
        while True:
            record = record.evolve(
                status=StepStatus.RUNNING, attempts=record.attempts + 1, started_at=self.clock()
            )
            self.store.save_step(record, lease)
            self.on_event(StepEvent(ctx.tenant.id, step.name, StepStatus.RUNNING.value))
            try:
                result = self._apply_and_verify(step, ctx)
            except ControlPlaneError as exc:
                record = self._after_failure(step, ctx, record, lease, exc)
                lease = self.locks.renew(lease)
                continue
            done = record.evolve(
                status=StepStatus.DONE,
                last_error="",
                next_attempt_at=None,
                finished_at=self.clock(),
                outputs=dict(result.outputs),
            )
            self.store.save_step(done, lease)
            self.store.audit(
                "step.applied", ctx.tenant.id, {"step": step.name, "attempts": done.attempts}
            )
            self.on_event(StepEvent(ctx.tenant.id, step.name, StepStatus.DONE.value))
            return done

    @staticmethod
    def _apply_and_verify(step: Step, ctx: StepContext) -> StepResult:
        result = step.apply(ctx)
        problems = step.verify(ctx)
        if problems:
            # Read-after-write can lag (DNS, API caches): treat as transient.
            err = StepFailedError(f"verify after apply: {'; '.join(problems)}")
            err.retryable = True
            raise err
        return result

    def _after_failure(
        self, step: Step, ctx: StepContext, record: StepRecord, lease: Lease, exc: ControlPlaneError
    ) -> StepRecord:
        """Record the failure; return the waiting record, or raise when it is final."""
        tenant = ctx.tenant.id
        if exc.retryable and record.attempts < self.policy.max_attempts:
            delay = self.policy.delay(record.attempts, exc.retry_after)
            waiting = record.evolve(
                status=StepStatus.WAITING_RETRY,
                last_error=exc.message,
                next_attempt_at=self.clock() + timedelta(seconds=delay),
            )
            self.store.save_step(waiting, lease)
            log.warning(
                "step %s of %s will retry in %.1fs: %s", step.name, tenant, delay, exc.message
            )
            self.on_event(StepEvent(tenant, step.name, StepStatus.WAITING_RETRY.value, exc.message))
            self.sleep(delay)
            return waiting
        failed = record.evolve(
            status=StepStatus.FAILED, last_error=exc.message, finished_at=self.clock()
        )
        self.store.save_step(failed, lease)
        self.on_event(StepEvent(tenant, step.name, StepStatus.FAILED.value, exc.message))
        spent = f" after {record.attempts} attempts" if exc.retryable else ""
        msg = f"tenant '{tenant}': step {step.name} failed{spent}: {exc.message}"
        raise StepFailedError(msg) from exc
