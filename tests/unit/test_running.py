"""The runner and the operation lifecycle on the in-memory store: no Postgres, no sleeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from controlplane.engine.operating import Operator, Request
from controlplane.engine.retrying import RetryPolicy
from controlplane.engine.running import Runner, StepEvent
from controlplane.engine.steps import Change, StepContext, StepResult, fingerprint_of
from controlplane.errors import ConflictError, DriverError, StepFailedError
from controlplane.models.operations import Lease, StepName, StepStatus
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.testing import FakeClock, MemoryStore, run_operation

TENANT = Tenant.model_validate(
    {"id": "acme", "name": "Acme", "tier": "standard", "region": "us-east-1"}
)
CTX = StepContext(TENANT, PlatformConfig(), "")


@dataclass
class FakeStep:
    """A step whose outside world is a counter; fails as scripted."""

    name: StepName
    failures: list[Exception] = field(default_factory=list)
    healthy: bool = True
    version: str = "v1"
    applied: int = 0
    on_apply: list[object] = field(default_factory=list)

    def fingerprint(self, ctx: StepContext) -> str:
        return fingerprint_of(self.name, self.version)

    def plan(self, ctx: StepContext) -> list[Change]:
        return [Change("create", self.name)]

    def apply(self, ctx: StepContext) -> StepResult:
        for hook in self.on_apply:
            hook()  # type: ignore[operator]
        if self.failures:
            raise self.failures.pop(0)
        self.applied += 1
        self.healthy = True
        return StepResult({"seen": ",".join(sorted(ctx.outputs))})

    def verify(self, ctx: StepContext) -> list[str]:
        return [] if self.healthy and self.applied else ["not there"]

    def destroy(self, ctx: StepContext) -> None:
        self.applied = 0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock=clock)


def _operator(store: MemoryStore, clock: FakeClock, **options: object) -> Operator:
    return Operator(store, store, "me", lock_wait=0, clock=clock, sleep=clock.sleep, **options)  # type: ignore[arg-type]


def _applied(store: MemoryStore) -> list[object]:
    return [e.detail["step"] for e in store.audit_log if e.action == "step.applied"]


def test_runs_steps_in_order_passes_outputs_and_audits_each_once(
    store: MemoryStore, clock: FakeClock
) -> None:
    steps = [FakeStep(StepName("a")), FakeStep(StepName("b"))]
    outcome = run_operation(store, CTX, steps, clock=clock)
    records = store.load_steps(outcome.operation_id)
    assert outcome.status == "succeeded"
    assert [records[n].status for n in ("a", "b")] == [StepStatus.DONE, StepStatus.DONE]
    assert records["b"].outputs == {"seen": "a"}
    assert _applied(store) == ["a", "b"]
    assert store.actions() == [
        "operation.started",
        "step.applied",
        "step.applied",
        "operation.succeeded",
    ]


def test_resume_after_permanent_failure_skips_finished_steps(
    store: MemoryStore, clock: FakeClock
) -> None:
    a = FakeStep(StepName("a"))
    b = FakeStep(StepName("b"), failures=[DriverError("quota exceeded — raise it in the console")])
    first = run_operation(store, CTX, [a, b], fingerprint="spec", clock=clock)
    assert (first.status, first.exit_code) == ("failed", 5)  # an outside system said no
    assert first.message == "step b failed: quota exceeded — raise it in the console"
    records = store.load_steps(first.operation_id)
    assert (records["a"].status, records["b"].status) == (StepStatus.DONE, StepStatus.FAILED)
    second = run_operation(store, CTX, [a, b], fingerprint="spec", clock=clock)
    assert second.operation_id == first.operation_id and second.status == "succeeded"
    assert (a.applied, b.applied) == (1, 1)
    assert store.load_steps(first.operation_id)["b"].attempts == 2


def test_transient_failure_returns_instead_of_sleeping_and_resumes_when_due(
    store: MemoryStore, clock: FakeClock
) -> None:
    flaky = FakeStep(StepName("a"), failures=[DriverError("429", retryable=True, retry_after=7.0)])
    request = Request("onboard", CTX, [flaky], fingerprint="spec")
    waiting = _operator(store, clock).run(request)
    record = store.load_steps(waiting.operation_id)["a"]
    assert (waiting.status, record.status, clock.sleeps) == (
        "waiting",
        StepStatus.WAITING_RETRY,
        [],
    )
    assert waiting.retry_at is not None and waiting.retry_at >= clock() + timedelta(seconds=7)
    # Not due yet: a second run leaves it waiting and calls nothing.
    assert _operator(store, clock).run(request).status == "waiting" and flaky.applied == 0
    clock.advance(7.0)
    done = _operator(store, clock).run(request)
    assert (done.status, flaky.applied, done.operation_id) == ("succeeded", 1, waiting.operation_id)
    assert store.load_steps(done.operation_id)["a"].attempts == 2


def test_drive_waits_on_the_clock_without_holding_the_lease(
    store: MemoryStore, clock: FakeClock
) -> None:
    held_during_sleep: list[bool] = []

    def sleep(seconds: float) -> None:
        lock = store._locks["acme"]
        held_during_sleep.append(lock.expires_at > clock())
        clock.sleep(seconds)

    flaky = FakeStep(
        StepName("a"),
        failures=[
            DriverError("503", retryable=True),
            DriverError("429", retryable=True, retry_after=7.0),
        ],
    )
    operator = Operator(store, store, "me", lock_wait=0, clock=clock, sleep=sleep)
    outcome = operator.drive(Request("onboard", CTX, [flaky], fingerprint="spec"))
    assert (outcome.status, flaky.applied) == ("succeeded", 1)
    assert len(clock.sleeps) == 2 and clock.sleeps[1] >= 7.0
    assert held_during_sleep == [False, False]


def test_retries_are_bounded(store: MemoryStore, clock: FakeClock) -> None:
    broken = FakeStep(StepName("a"), failures=[DriverError("timeout", retryable=True)] * 5)
    outcome = run_operation(store, CTX, [broken], policy=RetryPolicy(max_attempts=3), clock=clock)
    assert outcome.status == "failed" and "after 3 attempts: timeout" in outcome.message
    assert store.load_steps(outcome.operation_id)["a"].status is StepStatus.FAILED


def test_any_exception_is_recorded_as_a_failed_step_and_operation(
    store: MemoryStore, clock: FakeClock
) -> None:
    buggy = FakeStep(StepName("a"), failures=[KeyError("spec")])
    outcome = run_operation(store, CTX, [buggy], clock=clock)
    record = store.load_steps(outcome.operation_id)["a"]
    assert (outcome.status, outcome.exit_code, record.status) == ("failed", 1, StepStatus.FAILED)
    assert "unexpected KeyError" in record.last_error
    assert store.operations[outcome.operation_id].status == "failed"
    assert store.actions()[-1] == "operation.failed"


def test_unchanged_verified_step_is_skipped_in_a_new_operation(
    store: MemoryStore, clock: FakeClock
) -> None:
    step = FakeStep(StepName("a"))
    run_operation(store, CTX, [step], clock=clock)
    second = run_operation(store, CTX, [step], clock=clock)
    assert step.applied == 1 and store.load_steps(second.operation_id)["a"].skipped
    step.healthy = False  # drift: verify fails, so the step runs again
    run_operation(store, CTX, [step], clock=clock)
    assert step.applied == 2
    step.version = "v2"  # new desired input: runs again
    run_operation(store, CTX, [step], clock=clock)
    assert step.applied == 3


def test_a_holder_that_lost_its_lease_writes_nothing_more(
    store: MemoryStore, clock: FakeClock
) -> None:
    """A paused run resumes after a takeover: neither its step nor its failure is written."""

    def pause_and_lose_the_lease() -> None:
        clock.advance(store.lease_seconds + 1)  # paused past its lease...
        store.acquire("acme", "other", wait=0)  # ...and someone else took over

    slow = FakeStep(StepName("a"), on_apply=[pause_and_lose_the_lease])
    before = len(store.audit_log)
    outcome = run_operation(store, CTX, [slow], clock=clock)
    assert outcome.status == "failed" and "taken over" in outcome.message
    assert store.load_steps(outcome.operation_id)["a"].status is StepStatus.RUNNING
    assert store.actions()[before:] == ["operation.started"]  # no step.applied, no .failed


def test_cancel_stops_at_the_next_step_boundary(store: MemoryStore, clock: FakeClock) -> None:
    stop: list[bool] = []
    a = FakeStep(StepName("a"), on_apply=[lambda: stop.append(True)])
    b = FakeStep(StepName("b"))
    operator = _operator(store, clock, cancelled=lambda: bool(stop))
    outcome = operator.drive(Request("onboard", CTX, [a, b], fingerprint="spec"))
    assert (outcome.status, a.applied, b.applied) == ("interrupted", 1, 0)
    resumed = run_operation(store, CTX, [a, b], fingerprint="spec", clock=clock)
    assert (resumed.operation_id, resumed.status, b.applied) == (
        outcome.operation_id,
        "succeeded",
        1,
    )


def test_lock_held_is_a_transient_conflict_naming_the_holder(
    store: MemoryStore, clock: FakeClock
) -> None:
    store.acquire("acme", "alice@host/1", wait=0)
    outcome = _operator(store, clock).run(Request("onboard", CTX, [], fingerprint="x"))
    assert (outcome.status, outcome.exit_code) == ("locked", 4)
    assert "locked by alice@host/1" in outcome.message
    with pytest.raises(ConflictError) as raised:
        store.acquire("acme", "bob", wait=0)
    assert raised.value.retryable


def test_progress_events_name_each_transition(store: MemoryStore, clock: FakeClock) -> None:
    events: list[StepEvent] = []
    flaky = FakeStep(StepName("a"), failures=[DriverError("503", retryable=True)])
    runner = Runner(store, store, RetryPolicy(), clock=clock, on_event=events.append)
    lease: Lease = store.acquire("acme", "me", wait=0)
    op = store.begin_operation("onboard", "spec", context={}, lease=lease)
    result = runner.run(CTX.for_operation(op.id), [flaky], lease)
    assert not result.finished and [e.status for e in events] == ["running", "waiting_retry"]
    with pytest.raises(StepFailedError):
        Runner(store, store, RetryPolicy(max_attempts=1), clock=clock).run(
            CTX.for_operation(op.id), [FakeStep(StepName("b"), failures=[DriverError("no")])], lease
        )


@dataclass
class OutageStep(FakeStep):
    """Verifies by reading a server that is down (after a first good run)."""

    down: bool = False

    def verify(self, ctx: StepContext) -> list[str]:
        if self.down:
            msg = "the shared Postgres is unavailable"
            raise DriverError(msg, retryable=True)
        return super().verify(ctx)


def test_an_outage_while_verifying_waits_and_never_reapplies(
    store: MemoryStore, clock: FakeClock
) -> None:
    step = OutageStep(StepName("database"))
    run_operation(store, CTX, [step], clock=clock)
    step.down = True
    waiting = _operator(store, clock).run(Request("onboard", CTX, [step], fingerprint="again"))
    record = store.load_steps(waiting.operation_id)["database"]
    assert (waiting.status, record.status, step.applied) == ("waiting", StepStatus.WAITING_RETRY, 1)
    assert "unavailable" in record.last_error
    step.down = False
    clock.advance(60)
    done = _operator(store, clock).run(Request("onboard", CTX, [step], fingerprint="again"))
    assert (done.status, step.applied) == ("succeeded", 1)  # verified, still not re-applied
    assert store.load_steps(done.operation_id)["database"].skipped
