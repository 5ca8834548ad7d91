"""The Postgres store's operation bookkeeping: fencing, one transaction per record + audit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controlplane.errors import ConflictError, PostgresError
from controlplane.models.operations import AuditEntry, StepName, StepRecord, StepStatus
from controlplane.state import database
from controlplane.state.store import Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    engine = database.connect(database_url)
    # A negative lease expires at once, so a takeover needs no waiting.
    yield Store(engine, actor="test", lease_seconds=-1)
    engine.dispose()


def _actions(store: Store) -> list[str]:
    return [e["action"] for e in reversed(store.audit_entries("acme"))]


def test_lock_is_exclusive_and_names_the_holder(database_url: str) -> None:
    engine = database.connect(database_url)
    store = Store(engine, actor="test")
    store.acquire("acme", "alice@host/1", wait=0)
    with pytest.raises(ConflictError, match=r"locked by alice@host/1 .*--lock-timeout") as raised:
        store.acquire("acme", "bob@host/2", wait=0)
    assert raised.value.retryable
    engine.dispose()


def test_a_fenced_out_holder_writes_no_step_no_audit_and_no_finish(store: Store) -> None:
    stale = store.acquire("acme", "paused", wait=0)
    op = store.begin_operation("onboard", "fp", context={"out_dir": "/x"}, lease=stale)
    fresh = store.acquire("acme", "new", wait=0)  # the paused holder's lease expired
    assert fresh.token == stale.token + 1
    done = StepRecord(op.id, StepName("a"), 0, status=StepStatus.DONE)
    applied = AuditEntry("step.applied", "acme", {"step": "a"})
    with pytest.raises(ConflictError, match="taken over"):
        store.save_step(done, stale, applied)
    with pytest.raises(ConflictError, match="taken over"):
        store.finish_operation(op.id, "failed", "x", stale, AuditEntry("operation.failed", "acme"))
    with pytest.raises(ConflictError, match="lost the lock"):
        store.renew(stale)
    assert store.load_steps(op.id) == {}
    assert _actions(store) == ["operation.started"]
    resumed = store.begin_operation("onboard", "fp", context={"out_dir": "/y"}, lease=fresh)
    store.save_step(done, fresh, applied)
    store.finish_operation(
        op.id, "succeeded", "", fresh, AuditEntry("operation.succeeded", "acme", {})
    )
    assert resumed.id == op.id and store.load_steps(op.id)["a"].status is StepStatus.DONE
    assert _actions(store) == [
        "operation.started",
        "operation.resumed",
        "step.applied",
        "operation.succeeded",
    ]
    assert store.operation_context("acme") == {"out_dir": "/y"}


def test_bulk_reads_cover_every_tenant_in_one_call(store: Store) -> None:
    for tenant in ("acme", "globex"):
        store.record_tenant(
            {"id": tenant, "name": tenant, "tier": "standard", "region": "us-east-1"},
            fingerprint="f",
            source_file="",
            hosts={},
        )
        lease = store.acquire(tenant, "me", wait=0)
        op = store.begin_operation("onboard", "f", context={}, lease=lease)
        store.save_step(
            StepRecord(op.id, StepName("a"), 0, status=StepStatus.DONE, outputs={"k": tenant}),
            lease,
        )
        if tenant == "acme":
            store.finish_operation(op.id, "succeeded", "", lease, AuditEntry("x", tenant))
    states = store.tenant_states()
    assert {t: s.unfinished_operation for t, s in states.items()} == {
        "acme": False,
        "globex": True,
    }
    done = store.latest_done()
    assert {t: r["a"].outputs for t, r in done.items()} == {
        "acme": {"k": "acme"},
        "globex": {"k": "globex"},
    }


def test_a_state_store_migrated_by_a_newer_tenantctl_is_refused_with_what_to_do(
    database_url: str,
) -> None:
    engine = database.connect(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(PostgresError, match=r"revision 9999, newer than this tenantctl") as raised:
        database.connect(database_url)
    assert raised.value.exit_code == 5 and "upgrade this one" in raised.value.message
