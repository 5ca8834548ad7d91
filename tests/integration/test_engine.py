"""The step runner against the real Postgres state store: order, resume, retry, fencing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from controlplane.engine.retrying import RetryPolicy
from controlplane.engine.running import Runner, StepEvent
from controlplane.engine.steps import Change, StepContext, StepResult, fingerprint_of
from controlplane.errors import ConflictError, DriverError, StepFailedError
from controlplane.models.operations import StepName, StepRecord, StepStatus
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.state import database
from controlplane.state.store import Store

TENANT = Tenant.model_validate(
    {"id": "acme", "name": "Acme", "tier": "standard", "region": "us-east-1"}
)


@dataclass
class FakeStep:
    """A step whose outside world is a counter; fails as scripted."""

    name: StepName
    failures: list[Exception] = field(default_factory=list)
    healthy: bool = True
    version: str = "v1"
    applied: int = 0

    def fingerprint(self, ctx: StepContext) -> str:
        return fingerprint_of(self.name, self.version)

    def plan(self, ctx: StepContext) -> list[Change]:
        return [Change("create", self.name)]

    def apply(self, ctx: StepContext) -> StepResult:
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
def store(database_url: str) -> Iterator[Store]:
    engine = database.connect(database_url)
    yield Store(engine, actor="test")
    engine.dispose()


@dataclass
class Harness:
    store: Store
    sleeps: list[float] = field(default_factory=list)
    events: list[StepEvent] = field(default_factory=list)

    def run(
        self, steps: list[FakeStep], operation_id: str, policy: RetryPolicy | None = None
    ) -> None:
        lease = self.store.acquire("acme", "test", wait=0)
        runner = Runner(
            self.store,
            self.store,
            policy or RetryPolicy(max_attempts=3),
            sleep=self.sleeps.append,
            on_event=self.events.append,
        )
        try:
            runner.run(StepContext(TENANT, PlatformConfig(), operation_id), steps, lease)
        finally:
            self.store.release(lease)


def _operation(store: Store) -> str:
    return store.begin_operation("acme", "onboard", uuid.uuid4().hex).id


def test_runs_steps_in_order_and_passes_outputs(store: Store) -> None:
    steps = [FakeStep(StepName("a")), FakeStep(StepName("b"))]
    op = _operation(store)
    Harness(store).run(steps, op)
    records = store.load_steps(op)
    assert [records[n].status for n in ("a", "b")] == [StepStatus.DONE, StepStatus.DONE]
    assert records["b"].outputs == {"seen": "a"}
    applied = [
        e["detail"]["step"]
        for e in reversed(store.audit_entries("acme"))
        if e["action"] == "step.applied"
    ]
    assert applied == ["a", "b"]


def test_resume_after_permanent_failure_skips_finished_steps(store: Store) -> None:
    a = FakeStep(StepName("a"))
    b = FakeStep(StepName("b"), failures=[DriverError("quota exceeded — raise it in the console")])
    op = _operation(store)
    with pytest.raises(StepFailedError, match="step b failed: quota exceeded"):
        Harness(store).run([a, b], op)
    records = store.load_steps(op)
    assert (records["a"].status, records["b"].status) == (StepStatus.DONE, StepStatus.FAILED)
    assert records["b"].last_error == "quota exceeded — raise it in the console"
    Harness(store).run([a, b], op)
    assert (a.applied, b.applied) == (1, 1)
    assert store.load_steps(op)["b"].attempts == 2


def test_transient_errors_retry_with_backoff_and_retry_after(store: Store) -> None:
    flaky = FakeStep(
        StepName("a"),
        failures=[
            DriverError("503", retryable=True),
            DriverError("429", retryable=True, retry_after=7.0),
        ],
    )
    op = _operation(store)
    harness = Harness(store)
    harness.run([flaky], op)
    record = store.load_steps(op)["a"]
    assert (record.status, record.attempts, flaky.applied) == (StepStatus.DONE, 3, 1)
    assert len(harness.sleeps) == 2 and harness.sleeps[1] >= 7.0
    assert [e.status for e in harness.events].count("waiting_retry") == 2


def test_retries_are_bounded(store: Store) -> None:
    broken = FakeStep(StepName("a"), failures=[DriverError("timeout", retryable=True)] * 5)
    op = _operation(store)
    with pytest.raises(StepFailedError, match="after 3 attempts: timeout"):
        Harness(store).run([broken], op)
    assert store.load_steps(op)["a"].status is StepStatus.FAILED


def test_unchanged_verified_step_is_skipped_in_a_new_operation(store: Store) -> None:
    step = FakeStep(StepName("a"))
    Harness(store).run([step], _operation(store))
    second = _operation(store)
    Harness(store).run([step], second)
    assert step.applied == 1 and store.load_steps(second)["a"].skipped
    step.healthy = False  # drift: verify fails, so the step runs again
    Harness(store).run([step], _operation(store))
    assert step.applied == 2
    step.version = "v2"  # new desired input: runs again
    Harness(store).run([step], _operation(store))
    assert step.applied == 3


def test_lock_is_exclusive_and_names_the_holder(store: Store) -> None:
    store.acquire("acme", "alice@host/1", wait=0)
    started = time.monotonic()
    with pytest.raises(ConflictError, match=r"locked by alice@host/1 .*--lock-timeout"):
        store.acquire("acme", "bob@host/2", wait=0.3)
    assert time.monotonic() - started >= 0.3


def test_fencing_token_stops_a_holder_that_lost_its_lease(database_url: str) -> None:
    engine = database.connect(database_url)
    short = Store(engine, actor="test", lease_seconds=0.2)
    op = short.begin_operation("acme", "onboard", "fp").id
    stale = short.acquire("acme", "paused", wait=0)
    time.sleep(0.3)  # the lease expires while its holder is paused
    fresh = short.acquire("acme", "new", wait=0)
    assert fresh.token == stale.token + 1
    record = short.load_steps(op).get("a")
    assert record is None
    with pytest.raises(ConflictError, match="taken over"):
        short.save_step(StepRecord(op, StepName("a"), 0), stale)
    with pytest.raises(ConflictError, match="lost the lock"):
        short.renew(stale)
    short.save_step(StepRecord(op, StepName("a"), 0), fresh)
    assert short.load_steps(op)["a"].status is StepStatus.PENDING
    engine.dispose()
