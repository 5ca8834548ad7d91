"""Two `tenantctl worker` processes onboard a fleet queued by `apply --async`; one is killed.

Real Postgres, real terraform for each standard tenant's schema, Kubernetes and DNS in
render mode. The fleet is 200 tenants in CI (`CI=true`, as `.ci/run` runs) and 30 by
default: terraform per tenant makes 200 take about five minutes on the 2-core machine
(docs/operations.md has the measured figure); `TENANTCTL_TEST_FLEET=N` sets it.

The tests wait on events, not on the clock: a trigger they add to the test database
NOTIFYs every write to the tenants, leases and step records, and each wait re-checks its
condition after every change. Its one timeout only ends a hung run (nothing written for
`STALLED` seconds); it measures nothing.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from controlplane.state import database
from controlplane.state.store import Store
from tests.bookkeeping import check_books
from tests.conftest import EXAMPLES
from tests.lifecycle.conftest import write_tenant

TENANTCTL = [sys.executable, "-m", "tenantctl.main"]
FLEET = int(os.environ.get("TENANTCTL_TEST_FLEET") or (200 if os.environ.get("CI") else 30))
# A safety net: with two workers busy, minutes without a write to the store is a hang.
STALLED = 600.0
_CHANNEL = "test_workers_changes"
_WATCHED = ("tenants", "tenant_locks", "operation_steps")
_TRIGGER = f"""
CREATE FUNCTION test_workers_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{_CHANNEL}', TG_TABLE_NAME);
    RETURN NULL;
END $$;
""" + "".join(
    f"CREATE TRIGGER test_workers_changed AFTER INSERT OR UPDATE OR DELETE ON {table} "
    "FOR EACH STATEMENT EXECUTE FUNCTION test_workers_changed();"
    for table in _WATCHED
)
Until = Callable[[Callable[[], bool], str], None]


@pytest.fixture
def store(cli_env: dict[str, str]) -> Iterator[Store]:
    engine = database.connect(cli_env["TENANTCTL_DATABASE_URL"])
    yield Store(engine, actor="test")
    engine.dispose()


def _worker(env: dict[str, str], name: str, log: Path) -> subprocess.Popen[bytes]:
    # A dead worker's jobs come back within about 13 s; much less would take a live worker
    # whose heartbeat a loaded machine delays for dead (its lease still keeps others out).
    command = [*TENANTCTL, "worker", "--name", name, "--concurrency", "2", "--stalled-after", "10"]
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


@contextmanager
def _changes(url: str) -> Iterator[Until]:
    """`until(done, what)`: return once `done()` holds, re-checked after each write to the
    watched tables (the tables exist: `apply --async` migrated the store)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_TRIGGER)
        conn.execute(f"LISTEN {_CHANNEL}")  # before the first check: no change falls between

        def until(done: Callable[[], bool], what: str) -> None:
            while not done():
                # Closed at once: a suspended notifies() holds the connection's lock.
                with closing(conn.notifies(timeout=STALLED, stop_after=1)) as changed:
                    if next(changed, None) is None:
                        pytest.fail(f"nothing written to the store for {STALLED:.0f} s: {what}")
                for _ in conn.notifies(timeout=0):  # a burst of changes: one check after it
                    pass

        yield until


def _activated(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT count(*) FROM tenants WHERE status = 'active'"
            ).scalar_one()
        )


def _holds_a_tenant(store: Store, pid: int) -> bool:
    """The worker with this pid holds some tenant's lease right now (mid-operation)."""
    with store.engine.connect() as conn:
        holders = conn.exec_driver_sql(
            "SELECT holder FROM tenant_locks WHERE expires_at > now()"
        ).scalars()
        return any(h.split("/")[-2] == str(pid) for h in holders)


def _in_step(store: Store, step: str) -> bool:
    with store.engine.connect() as conn:
        return bool(
            conn.exec_driver_sql(
                "SELECT count(*) FROM operation_steps WHERE name = %(step)s AND status = 'running'",
                {"step": step},
            ).scalar_one()
        )


def _runs(entries: list[dict[str, Any]]) -> dict[str, list[tuple[str, int, bool]]]:
    """Per operation, each run in order: (holder, fencing token, ended with an outcome)."""
    runs: dict[str, list[tuple[str, int, bool]]] = {}
    for entry in entries:
        operation = entry["detail"].get("operation")
        if entry["action"] in ("operation.started", "operation.resumed"):
            detail = entry["detail"]
            runs.setdefault(operation, []).append((detail["holder"], detail["token"], False))
        elif entry["action"] in ("operation.succeeded", "operation.failed", "operation.waiting"):
            holder, token, _ = runs[operation][-1]
            runs[operation][-1] = (holder, token, True)
    return runs


@pytest.mark.slow
def test_two_workers_onboard_each_tenant_once_and_one_survives_the_others_kill(
    cli_env: dict[str, str], store: Store, tmp_path: Path
) -> None:
    folder = tmp_path / "fleet"
    folder.mkdir()
    shutil.copy(EXAMPLES / "platform.yaml", folder / "platform.yaml")
    ids = [f"fleet-{n:03d}" for n in range(FLEET)]
    for tenant_id in ids:
        write_tenant(folder, tenant_id)
    queued = subprocess.run(
        [*TENANTCTL, "apply", "-f", str(folder), "--async", "--yes", "-o", "json"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert queued.returncode == 0, queued.stderr
    rows = json.loads(queued.stdout)
    assert {r["result"] for r in rows} == {"queued"} and len(rows) == FLEET
    assert all(r["status_url"] == f"/v1/operations/{r['operation']}" for r in rows)

    with _changes(cli_env["TENANTCTL_DATABASE_URL"]) as until:
        doomed = _worker(cli_env, "doomed", tmp_path / "doomed.log")
        survivor = _worker(cli_env, "survivor", tmp_path / "survivor.log")
        try:
            until(
                lambda: _activated(store) >= FLEET // 3 and _holds_a_tenant(store, doomed.pid),
                f"a third of {FLEET} tenants active, the doomed worker mid-operation",
            )
            doomed.send_signal(signal.SIGKILL)
            assert doomed.wait(timeout=30) == -signal.SIGKILL
            until(lambda: _activated(store) == FLEET, f"{FLEET} tenants active")
            survivor.send_signal(signal.SIGTERM)
            assert survivor.wait(timeout=60) == 0, (tmp_path / "survivor.log").read_text()[-3000:]
        finally:
            for process in (doomed, survivor):
                if process.poll() is None:
                    process.kill()

    # Each tenant onboarded exactly once: one operation, succeeded, one entry per step.
    check_books(store, ids, "active")
    with store.engine.connect() as conn:
        operations = conn.exec_driver_sql("SELECT tenant_id, status FROM operations").all()
    assert sorted(operations) == [(t, "succeeded") for t in ids]
    entries = list(reversed(store.audit_entries(limit=100_000)))
    runs = _runs(entries)
    doomed_runs = [
        r for r in runs.values() if any(h.split("/")[-2] == str(doomed.pid) for h, _, _ in r)
    ]
    assert doomed_runs, "the doomed worker ran nothing"
    for operation, their_runs in runs.items():
        # One run at a time: a new holder only after the previous run ended, or died with
        # the doomed worker (then its fencing token is older: it can write nothing more).
        for (holder, token, ended), (_, next_token, _) in itertools.pairwise(their_runs):
            assert ended or holder.split("/")[-2] == str(doomed.pid), (operation, their_runs)
            assert next_token > token, (operation, their_runs)
        assert their_runs[-1][2], (operation, their_runs)
    # The doomed worker's unfinished operations were taken over and finished.
    taken_over = [r for r in doomed_runs if not r[0][2] or any(not ended for _, _, ended in r[:-1])]
    assert taken_over, "the kill landed between operations"


@pytest.mark.slow
def test_sigterm_stops_a_worker_at_a_step_boundary_and_another_one_goes_on(
    cli_env: dict[str, str], store: Store, tmp_path: Path
) -> None:
    folder = tmp_path / "pair"
    folder.mkdir()
    shutil.copy(EXAMPLES / "platform.yaml", folder / "platform.yaml")
    ids = ["term-a", "term-b"]
    for tenant_id in ids:
        write_tenant(folder, tenant_id)
    queued = subprocess.run(
        [*TENANTCTL, "apply", "-f", str(folder), "--async", "--yes"],
        env=cli_env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert queued.returncode == 0, queued.stderr

    with _changes(cli_env["TENANTCTL_DATABASE_URL"]) as until:
        first = _worker(cli_env, "first", tmp_path / "first.log")
        try:
            # While terraform runs a tenant's database step: more steps follow it.
            until(lambda: _in_step(store, "database"), "a database step running")
            first.send_signal(signal.SIGTERM)
            assert first.wait(timeout=120) == 0, (tmp_path / "first.log").read_text()[-3000:]
        finally:
            if first.poll() is None:
                first.kill()
        stopped = [
            e for e in store.audit_entries(limit=1000) if e["action"] == "operation.interrupted"
        ]
        assert stopped, "the worker finished instead of stopping at a step boundary"
        assert _activated(store) < len(ids)

        second = _worker(cli_env, "second", tmp_path / "second.log")
        try:
            until(lambda: _activated(store) == len(ids), "both tenants active")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=120)
    check_books(store, ids, "active")
