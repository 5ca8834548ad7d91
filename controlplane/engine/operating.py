"""One operation lifecycle for every flow: lease, heartbeat, begin, run, finish, audit.

`Operator.run` runs one operation as far as it can go now and returns an `Outcome`;
`Operator.drive` comes back when a step waits for its next attempt (releasing the
lease in between), which is what a CLI does; a queue worker reschedules instead.
Every write after the lease is taken is fenced, so a holder that lost its lease (paused,
partitioned) writes nothing more; any exception ends as a recorded failure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from controlplane.engine.retrying import RetryPolicy
from controlplane.engine.running import Runner, RunResult, StepEvent, utc_now
from controlplane.engine.steps import Step, StepContext
from controlplane.engine.stores import LockManager, OperationStore
from controlplane.errors import ConflictError, ControlPlaneError, RolledBackError
from controlplane.models.operations import AuditEntry, Lease, OperationStatus

__all__ = ["Operator", "Outcome", "Request"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """One operation to run: which flow, for which tenant, with what it needs."""

    kind: str
    ctx: StepContext
    steps: Sequence[Step]
    # Fingerprint of the desired spec: an unfinished operation with the same one resumes.
    fingerprint: str
    # Recorded with the operation so any host can resume it (platform config, out dir).
    context: Mapping[str, object] = field(default_factory=dict)
    # Re-checked under the lease: True when another run already did the work.
    done_already: Callable[[], bool] = lambda: False


@dataclass(frozen=True)
class Outcome:
    """What happened to one tenant's operation.

    `status` is an OperationStatus value, or `unchanged` (nothing to do) / `locked`.
    """

    tenant_id: str
    status: str
    operation_id: str = ""
    message: str = ""
    exit_code: int = 0
    retry_at: datetime | None = None


@dataclass
class Operator:
    """Runs operations for one holder (a CLI process, a worker)."""

    store: OperationStore
    locks: LockManager
    holder: str
    lock_wait: float = 30.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], datetime] = utc_now
    sleep: Callable[[float], None] = time.sleep
    on_event: Callable[[StepEvent], None] = lambda _event: None
    cancelled: Callable[[], bool] = lambda: False

    def drive(self, request: Request) -> Outcome:
        """Run until the operation finishes, fails or is interrupted; waits hold no lease."""
        while True:
            outcome = self.run(request)
            if outcome.status != OperationStatus.WAITING or outcome.retry_at is None:
                return outcome
            pause = (outcome.retry_at - self.clock()).total_seconds()
            if pause > 0:
                self.sleep(pause)
            if self.cancelled():
                return outcome

    def run(self, request: Request) -> Outcome:
        """Run the operation as far as it goes now, under the tenant's lease."""
        tenant = request.ctx.tenant.id
        try:
            lease = self.locks.acquire(tenant, self.holder, wait=self.lock_wait)
        except ControlPlaneError as exc:
            return Outcome(tenant, "locked", message=exc.message, exit_code=exc.exit_code)
        try:
            if request.done_already():
                return Outcome(tenant, "unchanged")
            return self._run_held(request, lease)
        finally:
            self._release(lease)

    def _run_held(self, request: Request, lease: Lease) -> Outcome:
        tenant = request.ctx.tenant.id
        operation_id = ""
        try:
            operation = self.store.begin_operation(
                request.kind, request.fingerprint, context=request.context, lease=lease
            )
            operation_id = operation.id
            runner = Runner(
                self.store,
                self.locks,
                self.policy,
                clock=self.clock,
                on_event=self.on_event,
                cancelled=self.cancelled,
            )
            with self._heartbeat(lease):
                result = runner.run(request.ctx.for_operation(operation_id), request.steps, lease)
            return self._finish(request, operation_id, result)
        except ControlPlaneError as exc:
            return self._failed(request, operation_id, lease, exc)
        except Exception as exc:  # a bug outside any step: still recorded, never `running`
            log.debug("operation %s of %s raised", operation_id, tenant, exc_info=True)
            bug = ControlPlaneError(f"unexpected {type(exc).__name__}: {exc} (a bug in tenantctl)")
            return self._failed(request, operation_id, lease, bug)

    def _finish(self, request: Request, operation_id: str, result: RunResult) -> Outcome:
        tenant = request.ctx.tenant.id
        status, message = OperationStatus.SUCCEEDED, ""
        if result.interrupted:
            status, message = OperationStatus.INTERRUPTED, "interrupted; the next run resumes it"
        elif result.retry_at is not None:
            status = OperationStatus.WAITING
            message = f"a step retries at {result.retry_at.isoformat(timespec='seconds')}"
        detail = {"operation": operation_id, "kind": request.kind}
        entry = AuditEntry(f"operation.{status.value}", tenant, detail)
        self.store.finish_operation(operation_id, status.value, message, result.lease, entry)
        return Outcome(tenant, status.value, operation_id, message, retry_at=result.retry_at)

    def _failed(
        self, request: Request, operation_id: str, lease: Lease, exc: ControlPlaneError
    ) -> Outcome:
        tenant = request.ctx.tenant.id
        rolled_back = isinstance(exc, RolledBackError)
        failed = (OperationStatus.ROLLED_BACK if rolled_back else OperationStatus.FAILED).value
        if not operation_id:
            return Outcome(tenant, failed, message=exc.message, exit_code=exc.exit_code)
        detail = {
            "operation": operation_id,
            "kind": request.kind,
            "error": exc.message,
            "exit_code": exc.exit_code,  # what the CLI exits with, for remote callers
        }
        try:
            self.store.finish_operation(
                operation_id,
                failed,
                exc.message,
                lease,
                AuditEntry(f"operation.{failed}", tenant, detail),
            )
        except ConflictError:
            # Fenced out: the new holder owns this operation now; write nothing more.
            log.info(
                "operation %s of %s: lease lost, leaving it to the new holder", operation_id, tenant
            )
        except ControlPlaneError as store_down:
            log.info(
                "operation %s of %s: cannot record failure: %s", operation_id, tenant, store_down
            )
        return Outcome(tenant, failed, operation_id, exc.message, exc.exit_code)

    def _release(self, lease: Lease) -> None:
        try:
            self.locks.release(lease)
        except ControlPlaneError as exc:  # the lease expires by itself
            log.info("tenant %s: could not release the lease: %s", lease.tenant_id, exc)

    @contextmanager
    def _heartbeat(self, lease: Lease) -> Iterator[None]:
        """Renew the lease in the background while a long step (terraform) runs."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.locks.lease_seconds / 3):
                try:
                    self.locks.renew(lease)
                except ControlPlaneError:
                    return  # lost: the fencing token refuses this holder's next write

        thread = threading.Thread(target=beat, name=f"lease-{lease.tenant_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
