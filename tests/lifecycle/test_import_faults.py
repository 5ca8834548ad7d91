"""kill -9 in the middle of the initial import, then a re-run: no row twice, none lost."""

from __future__ import annotations

import signal
import subprocess
import sys

import psycopg
import pytest

from controlplane import service
from controlplane.drivers.postgres_data import IMPORT_FAULT_ENV
from controlplane.service import lifecycle
from tests.lifecycle.conftest import TenantFolder

TENANTCTL = [sys.executable, "-m", "tenantctl.main"]


def _log(t: TenantFolder) -> list[tuple[str, int]]:
    with psycopg.connect(t.shared_url()) as conn:
        found = conn.execute("SELECT to_regclass(%s)", (f"{t.schema}.tenantctl_imports",))
        if not (row := found.fetchone()) or row[0] is None:
            return []
        rows = conn.execute(f"SELECT file, rows FROM {t.schema}.tenantctl_imports ORDER BY 1")  # noqa: S608
        return [(str(f), int(n)) for f, n in rows.fetchall()]


@pytest.mark.parametrize(
    ("fault", "logged_at_crash"),
    [
        # Inside the second file's transaction: its rows were inserted, not committed.
        pytest.param("orders.jsonl", [("customers.csv", 3)], id="inside-a-file"),
        # Right after the first file's commit, before the step's record.
        pytest.param("customers.csv+", [("customers.csv", 3)], id="between-files"),
    ],
)
def test_kill_9_mid_import_then_rerun_loads_every_row_once(
    tenant_folder: TenantFolder,
    cli_env: dict[str, str],
    fault: str,
    logged_at_crash: list[tuple[str, int]],
) -> None:
    t = tenant_folder
    crashed = subprocess.run(
        [*TENANTCTL, "create", "-f", str(t.file)],
        env={**cli_env, IMPORT_FAULT_ENV: fault},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert _log(t) == logged_at_crash
    assert t.admin_count("customers") == 3

    # The next run resumes the same operation at the `import` step.
    platform, sources = service.inputs.load([t.file])
    session = lifecycle.open_session(out_dir=t.folder.parent / "out")
    [outcome] = service.operations.apply(session, sources, platform)

    assert (outcome.action, outcome.exit_code) == ("applied", 0), outcome.message
    assert _log(t) == [("customers.csv", 3), ("orders.jsonl", 5)]
    assert (t.admin_count("customers"), t.admin_count("orders")) == (3, 5)
    with t.app_connect() as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM orders ORDER BY id::int").fetchall()]
    assert ids == ["1", "2", "3", "4", "5"]
    assert service.queries.get(session, t.tenant_id)["status"] == "active"
