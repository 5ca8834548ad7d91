"""Fault matrix: `kill -9` each lifecycle command at every step boundary and inside every
step, re-run it, and check the tenant converges with clean books, nothing orphaned and
no row lost.

"Boundary" kills right after a step's record is written (TENANTCTL_FAULT_KILL_AFTER_STEP);
"inside" kills right after a step's side effect, before its record says so
(TENANTCTL_FAULT_KILL_IN_STEP), which makes the re-run repeat the step. Each flow lists
how to bring a tenant to where the command starts, the command, and the status it ends
in; the steps come from the flow registry, so a new step is covered without editing this.
Upgrade and downgrade have their own matrix (test_tier_change_faults.py: the directions
alternate, each undoing the other, and the data is compared on both databases).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from controlplane import service
from controlplane.service import FAULT_ENV, FAULT_IN_STEP_ENV, lifecycle, offboarding
from controlplane.state import database
from controlplane.state.store import Store
from tenantctl.main import app
from tests.bookkeeping import check_books
from tests.lifecycle.conftest import TenantFolder, make_tenant_folder

pytestmark = pytest.mark.slow

runner = CliRunner()
TENANTCTL = [sys.executable, "-m", "tenantctl.main"]
TABLES = ("customers", "orders")
IMPORTED = {"customers": (3, 3), "orders": (5, 5)}
LIFECYCLE = "{deletion_protection: false, retention_days: 0"
Command = Callable[[TenantFolder], list[str]]


@dataclass(frozen=True)
class Flow:
    kind: str
    before: tuple[Command, ...]  # brings a new tenant to where `command` starts
    command: Command
    rerun: Command  # what the runbook says to run after a crash
    status: str
    # Brings the tenant back to where `command` starts, so one tenant serves every kill
    # (None: a new tenant for each, when the command cannot be undone).
    reset: Command | None = None
    purges: bool = False  # the tenant's data and resources are gone at the end


def _create(t: TenantFolder) -> list[str]:
    return ["create", "-f", str(t.file)]


def _apply(t: TenantFolder) -> list[str]:
    return ["apply", "-f", str(t.file), "--yes"]


def _suspend(t: TenantFolder) -> list[str]:
    return ["suspend", t.tenant_id, "--yes"]


def _resume(t: TenantFolder) -> list[str]:
    return ["resume", t.tenant_id]


def _delete(t: TenantFolder) -> list[str]:
    return ["delete", t.tenant_id, "--yes"]


def _restore(t: TenantFolder) -> list[str]:
    return ["restore", t.tenant_id]


def _purge(t: TenantFolder) -> list[str]:
    return ["purge", t.tenant_id, "--yes"]


FLOWS = {
    # A crashed create is finished by `apply` (create refuses a recorded tenant).
    "create": Flow(lifecycle.CREATE, (), _create, _apply, "active"),
    "suspend": Flow(lifecycle.SUSPEND, (_create,), _suspend, _suspend, "suspended", _resume),
    "resume": Flow(lifecycle.RESUME, (_create, _suspend), _resume, _resume, "active", _suspend),
    "delete": Flow(offboarding.DELETE, (_create,), _delete, _delete, "deleted", _restore),
    "restore": Flow(offboarding.RESTORE, (_create, _delete), _restore, _restore, "active", _delete),
    # The tenants have `retention_days: 0`: purgeable as soon as they are deleted.
    "purge": Flow(offboarding.PURGE, (_create, _delete), _purge, _purge, "purged", purges=True),
}


def _tenantctl(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, f"tenantctl {' '.join(args)}:\n{result.output}"
    return result.output


def _step_names(t: TenantFolder, kind: str) -> list[str]:
    config, _ = service.inputs.load([t.file], None)
    session = service.open_session()
    try:
        return lifecycle.step_names(session, kind, config)
    finally:
        session.store.engine.dispose()


def _checksums(t: TenantFolder) -> dict[str, tuple[int, int, str]]:
    """Rows, distinct ids and an order-independent digest of every imported table."""
    sums = {}
    with psycopg.connect(t.shared_url()) as conn:
        for table in TABLES:
            query = sql.SQL(
                "SELECT count(*), count(DISTINCT id),"
                " md5(string_agg(md5(r::text), '' ORDER BY md5(r::text))) FROM {} r"
            ).format(sql.Identifier(t.schema, table))
            count, ids, digest = conn.execute(query).fetchone() or (0, 0, "")
            sums[table] = (int(count), int(ids), str(digest))
    return sums


@pytest.mark.parametrize("where", ["boundary", "inside"])
@pytest.mark.parametrize("name", sorted(FLOWS))
def test_kill_then_rerun_converges(
    name: str, where: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    flow = FLOWS[name]
    failpoint = FAULT_ENV if where == "boundary" else FAULT_IN_STEP_ENV
    probe = make_tenant_folder(cli_env, tmp_path / "probe")
    steps = _step_names(probe, flow.kind)
    assert len(steps) >= 3, steps
    tenants: list[TenantFolder] = []
    for step in steps:
        if tenants and flow.reset:
            t = tenants[-1]
            _tenantctl(flow.reset(t))
        else:
            t = make_tenant_folder(cli_env, tmp_path / step.replace(".", "-"))
            t.file.write_text(t.file.read_text().replace("{deletion_protection: false", LIFECYCLE))
            for before in flow.before:
                _tenantctl(before(t))
            tenants.append(t)
        expected = _checksums(t) if flow.before else None
        crashed = subprocess.run(
            [*TENANTCTL, *flow.command(t)],
            env={**cli_env, failpoint: step},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert crashed.returncode == -signal.SIGKILL, (step, crashed.stdout, crashed.stderr)

        _tenantctl(flow.rerun(t))

        if flow.purges:
            continue
        after = _checksums(t)
        # Every imported row present exactly once; a flow on a running tenant changes none.
        assert {table: (n, ids) for table, (n, ids, _) in after.items()} == IMPORTED
        assert expected is None or after == expected
    engine = database.connect(cli_env["TENANTCTL_DATABASE_URL"])
    try:
        check_books(Store(engine, actor="test"), [t.tenant_id for t in tenants], flow.status)
    finally:
        engine.dispose()
    kept = [] if flow.purges else tenants
    _check_no_orphans(tenants, kept, tmp_path / "out", Path(cli_env["TENANTCTL_DATA_DIR"]))


def _check_no_orphans(
    tenants: list[TenantFolder], kept: list[TenantFolder], out: Path, data: Path
) -> None:
    """Exactly one schema, one owner and one app role, one terraform workspace and one
    render folder per tenant `kept`, and nothing of the other `tenants` (purged)."""
    schemas = {t.schema for t in tenants}
    wanted = {t.schema for t in kept}
    with psycopg.connect(tenants[0].shared_url()) as conn:
        roles = {
            r
            for (r,) in conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
                ([f"{s}_{kind}" for s in schemas for kind in ("owner", "app")],),
            )
        }
        found = {
            s
            for (s,) in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (list(schemas),)
            )
        }
    assert roles == {f"{s}_{kind}" for s in wanted for kind in ("owner", "app")}
    assert found == wanted
    workspaces = data / "terraform" / "workspaces"
    ids = {t.tenant_id for t in kept}
    assert {p.name for p in workspaces.iterdir() if p.name != "probe"} == ids
    for workspace in workspaces.iterdir():
        assert not list(workspace.rglob("*.tfstate.lock*"))
    assert {p.name for p in out.iterdir()} - {"_platform"} == ids
