"""Run an operation's steps in order: skip finished work, record each outcome, never sleep.

A step's record (and its audit entry, in the same transaction) is written before the
next step starts, so a crash at any point resumes at the first unfinished step. Retry
decisions are made here alone, from the error type; a transient failure records when to
try next and returns (like controller-runtime's `Result{RequeueAfter}`): whoever runs
the operation comes back then, without holding the lease in between.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from controlplane.engine.retrying import RetryPolicy
from controlplane.engine.steps import Step, StepContext, StepResult
from controlplane.engine.stores import LockManager, OperationStore
from controlplane.errors import ControlPlaneError, RolledBackError, StepFailedError
from controlplane.models.operations import AuditEntry, Lease, StepRecord, StepStatus

__all__ = ["RunResult", "Runner", "StepEvent", "utc_now"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepEvent:
    """Progress notice for shells (status is a StepStatus value, `skipped` or `progress`)."""

    tenant_id: str
    step: str
    status: str
    message: str = ""


@dataclass(frozen=True)
class RunResult:
    """How far a run got: every step done, a step waiting until `retry_at`, or interrupted."""

    lease: Lease
    retry_at: datetime | None = None
    interrupted: bool = False

    @property
    def finished(self) -> bool:
        """True when every step is done."""
        return self.retry_at is None and not self.interrupted


def utc_now() -> datetime:
    """The real clock (tests inject `controlplane.testing.FakeClock`)."""
    return datetime.now(UTC)


@dataclass
class Runner:
    """Executes steps for one operation under a held lease."""

    store: OperationStore
    locks: LockManager
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], datetime] = utc_now
    on_event: Callable[[StepEvent], None] = lambda _event: None
    # Checked between steps: a shell's Ctrl-C stops the run at the next step boundary.
    cancelled: Callable[[], bool] = lambda: False

    def run(self, ctx: StepContext, steps: Sequence[Step], lease: Lease) -> RunResult:
        """Run `steps` for `ctx.operation_id` as far as they go now.

        Raises:
            StepFailedError: a step failed permanently or spent its attempts.
            ConflictError: the lease was lost to another holder.
        """
        records = self.store.load_steps(ctx.operation_id)
        outputs: dict[str, dict[str, str]] = {}
        for position, step in enumerate(steps):
            if self.cancelled():
                return RunResult(lease, interrupted=True)
            lease = self.locks.renew(lease)
            here = ctx.with_outputs(dict(outputs))
            record = records.get(step.name) or StepRecord(ctx.operation_id, step.name, position)
            record = self._converge(step, here, record, lease)
            if record.status is StepStatus.WAITING_RETRY:
                return RunResult(lease, retry_at=record.next_attempt_at)
            outputs[step.name] = dict(record.outputs)
        return RunResult(lease)

    def _converge(
        self, step: Step, ctx: StepContext, record: StepRecord, lease: Lease
    ) -> StepRecord:
        tenant = ctx.tenant.id
        wanted = step.fingerprint(ctx)
        if record.fingerprint == wanted:
            if record.status is StepStatus.DONE:
                self.on_event(StepEvent(tenant, step.name, "skipped", "already done"))
                return record
            due = record.next_attempt_at
            if record.status is StepStatus.WAITING_RETRY and due and due > self.clock():
                return record
        previous = self.store.last_done(tenant, step.name)
        if previous is not None and previous.fingerprint == wanted:
            try:
                if not step.verify(ctx):
                    return self._skip(step, ctx, record.evolve(fingerprint=wanted), previous, lease)
            except ControlPlaneError as exc:
                if exc.retryable:  # an outage: wait for it, never re-apply against it
                    attempt = record.evolve(fingerprint=wanted, attempts=record.attempts + 1)
                    return self._after_failure(step, ctx, attempt, lease, exc)
                # Any other failed read: apply the step, which records what happens.
        return self._attempt(step, ctx, record.evolve(fingerprint=wanted), lease)

    def _skip(
        self, step: Step, ctx: StepContext, record: StepRecord, previous: StepRecord, lease: Lease
    ) -> StepRecord:
        """Done without applying: unchanged since `previous` and it still verifies."""
        done = record.evolve(
            status=StepStatus.DONE,
            skipped=True,
            outputs=dict(previous.outputs),
            next_attempt_at=None,
            finished_at=self.clock(),
        )
        self.store.save_step(done, lease)
        self.on_event(StepEvent(ctx.tenant.id, step.name, "skipped", "unchanged and verified"))
        return done

    def _attempt(
        self, step: Step, ctx: StepContext, record: StepRecord, lease: Lease
    ) -> StepRecord:
        record = record.evolve(
            status=StepStatus.RUNNING,
            attempts=record.attempts + 1,
            started_at=self.clock(),
            next_attempt_at=None,
        )
        self.store.save_step(record, lease)
        self.on_event(StepEvent(ctx.tenant.id, step.name, StepStatus.RUNNING.value))
        try:
            result = self._apply_and_verify(step, ctx)
        except ControlPlaneError as exc:
            return self._after_failure(step, ctx, record, lease, exc)
        except Exception as exc:  # a bug in a step or driver: record it, never leave `running`
            log.debug("step %s of %s raised", step.name, ctx.tenant.id, exc_info=True)
            bug = ControlPlaneError(f"unexpected {type(exc).__name__}: {exc} (a bug in tenantctl)")
            return self._after_failure(step, ctx, record, lease, bug)
        done = record.evolve(
            status=StepStatus.DONE,
            last_error="",
            finished_at=self.clock(),
            outputs=dict(result.outputs),
        )
        detail = {"step": step.name, "operation": ctx.operation_id, "attempts": done.attempts}
        self.store.save_step(done, lease, AuditEntry("step.applied", ctx.tenant.id, detail))
        self.on_event(StepEvent(ctx.tenant.id, step.name, StepStatus.DONE.value))
        return done

    @staticmethod
    def _apply_and_verify(step: Step, ctx: StepContext) -> StepResult:
        result = step.apply(ctx)
        problems = step.verify(ctx.with_outputs({**ctx.outputs, step.name: result.outputs}))
        if problems:
            # Read-after-write can lag (DNS, API caches): treat as transient.
            msg = f"verify after apply: {'; '.join(problems)}"
            raise StepFailedError(msg, retryable=True)
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
            self.on_event(
                StepEvent(
                    tenant,
                    step.name,
                    StepStatus.WAITING_RETRY.value,
                    f"{exc.message} (attempt {record.attempts}, next in {delay:.1f}s)",
                )
            )
            return waiting
        failed = record.evolve(
            status=StepStatus.FAILED, last_error=exc.message, finished_at=self.clock()
        )
        self.store.save_step(failed, lease)
        self.on_event(StepEvent(tenant, step.name, StepStatus.FAILED.value, exc.message))
        spent = f" after {record.attempts} attempts" if exc.retryable else ""
        msg = f"step {step.name} failed{spent}: {exc.message}"
        final = (RolledBackError if isinstance(exc, RolledBackError) else StepFailedError)(msg)
        # The exit code says why: 4 a conflict, 5 an outside system, 1 a bug, 6 the step.
        final.exit_code = exc.exit_code
        raise final from exc
