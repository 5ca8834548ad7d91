"""The reconciler on the embedded default layout (render mode, real terraform and Postgres).

One pass heals drift and audits what it fixed; observe-only tenants (paused, or
`lifecycle.management: observe`) are reported and left; a failing tenant backs off with
the backoff kept in the state store (a new session respects it); `watch` re-reads the
directory every pass and keeps going past an invalid commit, and the `reconcile --watch`
process stops cleanly on SIGTERM (a pod stop). Time is a FakeClock; the process test
waits on its output and the store's NOTIFY, with timeouts that only end a hung run.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from controlplane import service
from controlplane.service import reconciling
from controlplane.state import database, listening
from controlplane.state.store import Store
from controlplane.testing import FakeClock
from tenantctl.main import app
from tests.bookkeeping import check_books
from tests.conftest import EXAMPLES
from tests.lifecycle.conftest import write_tenant

runner = CliRunner()


def _json(*args: str) -> tuple[int, Any]:
    result = runner.invoke(app, [*args, "-o", "json"])
    return result.exit_code, json.loads(result.stdout or "null")


@dataclass(frozen=True)
class Fleet:
    folder: Path
    ids: list[str]

    def network(self, tenant_id: str) -> Path:
        return Path("out") / tenant_id / "kubernetes" / "network.yaml"

    def dns(self, tenant_id: str) -> Path:
        return Path("out") / tenant_id / "dns.yaml"

    def drift(self, tenant_id: str) -> None:
        """A hand-added allow-all NetworkPolicy and a deleted DNS file."""
        network = self.network(tenant_id)
        network.write_text(network.read_text() + "---\nkind: NetworkPolicy\n")
        self.dns(tenant_id).unlink()


@pytest.fixture
def fleet(cli_env: dict[str, str], tmp_path: Path) -> Fleet:
    """Two applied standard tenants in `tmp_path/fleet`."""
    del cli_env
    folder = tmp_path / "fleet"
    folder.mkdir()
    shutil.copy(EXAMPLES / "platform.yaml", folder / "platform.yaml")
    prefix = f"rc{uuid.uuid4().hex[:6]}"
    ids = [f"{prefix}-a", f"{prefix}-b"]
    for tenant_id in ids:
        write_tenant(folder, tenant_id)
    code, outcomes = _json("apply", "-f", str(folder), "--yes")
    assert code == 0, outcomes
    return Fleet(folder, ids)


def _results(rows: list[dict[str, str]]) -> dict[str, str]:
    return {r["tenant"]: r["result"] for r in rows}


@pytest.mark.slow
def test_one_pass_heals_drift_and_audits_what_it_fixed(fleet: Fleet) -> None:
    a, b = fleet.ids
    network = fleet.network(a).read_text()
    fleet.drift(a)

    code, rows = _json("reconcile", str(fleet.folder))

    assert code == 0, rows
    assert _results(rows) == {a: "repaired", b: "unchanged"}
    message = {r["tenant"]: r["message"] for r in rows}[a]
    assert "network:" in message and "dns:" in message
    assert fleet.dns(a).exists() and fleet.network(a).read_text() == network
    [entry] = [e for e in _json("audit", "--tenant", a)[1] if e["action"] == "reconcile.repaired"]
    assert {p.split(":")[0] for p in entry["detail"]["problems"]} == {"network", "dns"}
    code, rows = _json("reconcile", str(fleet.folder))
    assert code == 0 and set(_results(rows).values()) == {"unchanged"}


@pytest.mark.slow
def test_observe_only_tenants_report_drift_and_keep_it(fleet: Fleet) -> None:
    a, b = fleet.ids
    result = runner.invoke(app, ["pause-reconcile", a, "--reason", "maintenance"])
    assert result.exit_code == 0, result.output
    observed = fleet.folder / f"{b}.yaml"
    observed.write_text(
        observed.read_text().replace(
            "deletion_protection: false}", "deletion_protection: false, management: observe}"
        )
    )
    fleet.drift(a)
    fleet.drift(b)

    for command in (["reconcile", str(fleet.folder)], ["apply", "-f", str(fleet.folder)]):
        code, rows = _json(*command, *(["--reconcile", "--yes"] if command[0] == "apply" else []))
        assert _results(rows) == {a: "drifted", b: "drifted"}, rows
        assert all("dns:" in r["message"] for r in rows)
        assert not fleet.dns(a).exists() and not fleet.dns(b).exists()
    assert code == 0  # apply: drift of observed tenants is no failure
    assert _json("reconcile", str(fleet.folder))[0] == 7  # the reconciler says it is left
    marks = {t["id"]: t["marks"] for t in _json("get")[1]}
    assert marks == {a: ["paused"], b: []}  # b's file is not applied while observed
    audit = _json("audit", "--tenant", a)[1]
    assert [e["detail"] for e in audit if e["action"] == "reconcile.paused"] == [
        {"reason": "maintenance"}
    ]

    assert runner.invoke(app, ["resume-reconcile", a]).exit_code == 0
    code, rows = _json("reconcile", str(fleet.folder))
    assert _results(rows) == {a: "repaired", b: "drifted"}
    assert fleet.dns(a).exists() and not fleet.dns(b).exists()


@pytest.mark.slow
def test_a_failing_tenant_backs_off_and_a_restarted_reconciler_respects_it(
    fleet: Fleet,
) -> None:
    broken = f"{fleet.ids[0]}-new"
    write_tenant(fleet.folder, broken, source="./no-such-folder/")
    source = reconciling.Directory((fleet.folder,))
    clock = FakeClock()
    backoff = reconciling.Backoff(base=60, cap=600)

    def one_pass() -> dict[str, service.operations.ApplyOutcome]:
        session = service.open_session()  # a new process each time: nothing in memory
        report = reconciling.reconcile(session, source, clock=clock, backoff=backoff)
        return {o.tenant_id: o for o in report.outcomes}

    assert one_pass()[broken].action == "failed"
    waiting = one_pass()[broken]
    assert waiting.action == "backing-off"
    later = (clock.now + timedelta(seconds=60)).isoformat(timespec="seconds")
    assert f"failed 1 pass(es) in a row, next attempt {later}" in waiting.message
    clock.advance(61)
    assert one_pass()[broken].action == "failed"  # retried, failed again: 120 s now
    clock.advance(61)
    assert one_pass()[broken].action == "backing-off"
    clock.advance(60)
    write_tenant(fleet.folder, broken)  # the fix lands in the checkout
    assert one_pass()[broken].action == "applied"
    controls = service.open_session().reconciles().controls([broken])
    assert controls[broken].failures == 0 and controls[broken].next_attempt_at is None


class _Passes(threading.Event):
    """Stops the watch loop after `count` waits; each wait edits the checkout instead of
    sleeping (no test waits for real)."""

    def __init__(self, count: int, between: list[Any]) -> None:
        super().__init__()
        self.count = count
        self.between = between

    def wait(self, timeout: float | None = None) -> bool:
        del timeout
        if self.between:
            self.between.pop(0)()
        self.count -= 1
        if self.count <= 0:
            self.set()
        return self.is_set()


@pytest.mark.slow
def test_watch_rereads_the_directory_and_survives_an_invalid_commit(fleet: Fleet) -> None:
    added = f"{fleet.ids[0]}-late"
    bad = fleet.folder / "bad.yaml"
    steps = [
        lambda: bad.write_text("tenant:\n  id: Not_A_Label\n"),
        lambda: (bad.unlink(), write_tenant(fleet.folder, added)),
    ]
    reports: list[reconciling.PassReport] = []
    pacing = reconciling.Pacing(30, stop=_Passes(3, steps), clock=FakeClock())

    reconciling.watch(
        service.open_session(), reconciling.Directory((fleet.folder,)), pacing, reports.append
    )

    assert len(reports) == 3
    assert set(_results_of(reports[0]).values()) == {"unchanged"}
    assert reports[1].exit_code == 2 and "bad.yaml" in reports[1].error
    assert _results_of(reports[2])[added] == "applied"


def _results_of(report: reconciling.PassReport) -> dict[str, str]:
    return {o.tenant_id: o.action for o in report.outcomes}


# Safety nets only: a pass of one render-mode tenant takes seconds; these end a hung run.
_HUNG = 300.0


def _first_document(fd: int) -> Any:
    """The first JSON document the process prints on `fd`, read as its output arrives."""
    text = b""
    while True:
        try:
            return json.JSONDecoder().raw_decode(text.decode().lstrip())[0]
        except json.JSONDecodeError:
            pass
        if not select.select([fd], [], [], _HUNG)[0]:
            pytest.fail(f"no output for {_HUNG:.0f} s")
        chunk = os.read(fd, 65536)
        if not chunk:
            pytest.fail(f"the reconciler exited before printing a pass: {text.decode()}")
        text += chunk


@pytest.mark.slow
def test_watch_process_stops_on_sigterm_mid_pass_with_nothing_left_running(
    fleet: Fleet, cli_env: dict[str, str], tmp_path: Path
) -> None:
    command = [
        sys.executable, "-m", "tenantctl.main", "reconcile", "--watch", "--interval", "1",
        str(fleet.folder), "--out", str(tmp_path / "out"), "-o", "json",
    ]  # fmt: skip
    url = cli_env["TENANTCTL_DATABASE_URL"]
    late = f"{fleet.ids[0]}-late"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"LISTEN {listening.CHANNEL}")  # the store NOTIFYs each tenant change
        process = subprocess.Popen(
            command, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            assert process.stdout is not None
            first = _first_document(process.stdout.fileno())
            assert {r["tenant"]: r["result"] for r in first} == dict.fromkeys(
                fleet.ids, "unchanged"
            )
            write_tenant(fleet.folder, late)  # a commit lands: the next pass onboards it
            # Closed when done: a suspended notifies() holds the connection's lock.
            with closing(conn.notifies(timeout=_HUNG)) as notes:
                assert any(n.payload == late for n in notes), f"{late} never recorded"
            process.send_signal(signal.SIGTERM)  # its operation is running: a step, then stop
            _, errors = process.communicate(timeout=_HUNG)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, errors.decode()
    assert "reconciler stopped" in errors.decode()

    store = Store(database.connect(url), actor="test")
    with store.engine.connect() as db:
        unfinished = db.exec_driver_sql(
            "SELECT tenant_id FROM operations WHERE status IN ('running', 'pending')"
        ).all()
        held = db.exec_driver_sql("SELECT tenant_id FROM tenant_locks WHERE expires_at > now()")
        assert (unfinished, held.all()) == ([], [])  # stopped at a step boundary, lease freed
    assert store.operations_of(late, limit=1)[0]["status"] in ("interrupted", "succeeded")
    # A re-run finishes what the stop left, each step applied once.
    code, rows = _json("reconcile", str(fleet.folder), "--out", str(tmp_path / "out"))
    assert code == 0, rows
    check_books(store, [*fleet.ids, late], "active")
    store.engine.dispose()
