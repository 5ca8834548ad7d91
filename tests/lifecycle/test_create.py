"""`tenantctl create`: onboarding one tenant with progress, its initial import, exit codes."""

from __future__ import annotations

import shutil

from typer.testing import CliRunner

from controlplane import service
from controlplane.service import lifecycle
from controlplane.state import database
from controlplane.state.store import Store
from tenantctl.main import app
from tests.lifecycle.conftest import TenantFolder

runner = CliRunner()


def tenantctl(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _audit_actions(url: str, tenant_id: str) -> list[tuple[str, str]]:
    engine = database.connect(url)
    entries = Store(engine, actor="test").audit_entries(tenant_id, limit=1000)
    engine.dispose()
    return [(e["action"], str(e["detail"].get("step") or e["detail"].get("kind"))) for e in entries]


def test_create_onboards_with_progress_imports_once_and_refuses_a_second_create(
    tenant_folder: TenantFolder,
) -> None:
    t = tenant_folder
    code, output = tenantctl("create", "-f", str(t.file))
    assert code == 0, output
    for step in ("record", "database", "compute", "config", "network", "dns", "import"):
        assert step in output
    assert "activate" in output and "✓" in output and "succeeded" in output

    with t.app_connect() as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM customers ORDER BY id").fetchall()]
        orders = conn.execute("SELECT count(*), sum(total::int) FROM orders").fetchone()
        log = conn.execute("SELECT file, rows FROM tenantctl_imports ORDER BY 1").fetchall()
    assert names == ["Ada", "Grace", "Hopper, Grace"]
    assert orders == (5, 150)
    assert log == [("customers.csv", 3), ("orders.jsonl", 5)]

    code, output = tenantctl("create", "-f", str(t.file))
    assert code == 4
    assert f"tenant '{t.tenant_id}' already exists" in output and "tenantctl apply" in output

    # A re-run (apply --reconcile verifies every step) neither re-imports nor duplicates.
    code, output = tenantctl("apply", "-f", str(t.file), "--yes", "--reconcile")
    assert code == 0, output
    assert (t.admin_count("customers"), t.admin_count("orders")) == (3, 5)
    code, output = tenantctl("get", t.tenant_id, "-o", "json")
    assert code == 0 and '"status": "active"' in output
    audit = _audit_actions(t.database_url, t.tenant_id)
    applied = [step for action, step in audit if action == "step.applied"]
    assert applied.count("import") == 1 and applied.count("activate") == 1


def test_a_changed_file_is_refused_not_imported_twice(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    assert tenantctl("create", "-f", str(t.file))[0] == 0
    customers = t.folder / "data" / "customers.csv"
    customers.write_text(customers.read_text() + f"4,Linus,{t.tenant_id}\n")

    # `apply --reconcile` through a session whose flows import (what `create` uses).
    platform, sources = service.inputs.load([t.file])
    session = lifecycle.open_session(out_dir=t.folder.parent / "out")
    [outcome] = service.operations.apply(
        session, sources, platform, service.fleets.Options(reconcile=True)
    )

    assert (outcome.action, outcome.exit_code) == ("failed", 4)
    assert "customers.csv changed since it was imported" in outcome.message
    assert t.admin_count("customers") == 3


def test_create_with_a_missing_file_or_folder_says_what_to_fix(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    code, output = tenantctl("create", "-f", str(t.folder / "nope.yaml"))
    assert code == 2 and "nope.yaml" in output

    shutil.rmtree(t.folder / "data")
    code, output = tenantctl("create", "-f", str(t.file))
    assert code == 3
    assert "data_import.source ./data/" in output and "not found" in output


def test_plan_of_a_new_tenant_lists_the_files_to_import(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    platform, sources = service.inputs.load([t.file])
    session = lifecycle.open_session(out_dir=t.folder.parent / "out")

    [plan] = service.planning.plan(session, sources, platform)

    imports = [(c.action, c.target, c.detail) for c in plan.steps if c.target.startswith("import/")]
    assert plan.action == "create"
    assert imports == [
        ("create", "import/customers.csv", "3 row(s) into customers"),
        ("create", "import/orders.jsonl", "5 row(s) into orders"),
    ]
