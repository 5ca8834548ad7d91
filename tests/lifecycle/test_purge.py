"""`tenantctl purge`: deleted tenants past their date go for good (reverse onboarding
order), their key is shredded and a receipt lands in the audit log; refused without a
verified export unless told; a crash at any step boundary is finished by purge again.

CLI tests use `retention_days: 0` tenants (due at once); the retention window itself
is tested through the service with a fake clock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from controlplane import service
from controlplane.errors import StepFailedError
from controlplane.models.exports import DUMP
from controlplane.service import offboarding
from controlplane.testing import FakeClock
from tests.lifecycle.conftest import TenantFolder, write_tenant
from tests.lifecycle.test_delete import as_json, audit_actions, crash, local_store, tenantctl

PURGE_STEPS = (
    "purge.hold",
    "purge.dns",
    "purge.network",
    "purge.config",
    "purge.compute",
    "purge.database",
    "purge.shred",
    "purge.receipt",
)
DUE = "{deletion_protection: false, retention_days: 0}"


def deleted(t: TenantFolder) -> dict[str, Any]:
    """Create the tenant (due for purge at once), delete it; return its export."""
    write_tenant(t.folder, t.tenant_id, source="./data/", lifecycle=DUE)
    assert tenantctl("create", "-f", str(t.file))[0] == 0
    assert tenantctl("delete", t.tenant_id, "--yes")[0] == 0
    (export,) = json.loads(tenantctl("describe", t.tenant_id, "-o", "json")[1])["exports"]
    return dict(export)


def receipts(tenant_id: str) -> list[dict[str, Any]]:
    entries = as_json("audit", "--tenant", tenant_id, "--limit", "500")
    return [e for e in entries if e["action"] == "tenant.purged"]


def assert_gone(t: TenantFolder) -> None:
    """Nothing of the tenant left in Postgres, terraform state, render output or keys."""
    with psycopg.connect(t.shared_url()) as conn:
        schemas = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (t.schema,))
        assert schemas.fetchall() == []
        roles = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (t.schema + "%",)
        )
        assert roles.fetchall() == []
    assert not (t.data_dir / "terraform" / "workspaces" / t.tenant_id).exists()  # state too
    out = Path("out") / t.tenant_id
    assert not out.exists() or [p for p in out.rglob("*") if p.is_file()] == []
    assert local_store(t).shred_problems(t.tenant_id) == []
    assert as_json("get", t.tenant_id)["status"] == "purged"
    assert json.loads(tenantctl("describe", t.tenant_id, "-o", "json")[1])["hosts"] == {}


def test_purge_removes_everything_and_writes_a_receipt(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    export = deleted(t)
    listed = as_json("purge", "--dry-run")
    assert [(c["tenant"], c["purge"], c["export_sha256"]) for c in listed] == [
        (t.tenant_id, "yes", export["checksum"])
    ]
    assert as_json("get", t.tenant_id)["status"] == "deleted"  # a dry run changes nothing

    code, output = tenantctl("purge", "--yes")

    assert code == 0, output
    assert all(step in output for step in PURGE_STEPS)
    assert_gone(t)
    (receipt,) = receipts(t.tenant_id)
    assert receipt["actor"] and receipt["detail"]["export"]["checksum"] == export["checksum"]
    assert receipt["detail"]["removed"] == ["dns", "network", "config", "compute", "database"]
    assert receipt["detail"]["hostnames"] == [f"{t.tenant_id}.tenants.example.com"]
    # The export's record stays; its copy is crypto-shredded with the data key.
    assert (t.data_dir / "exports" / t.tenant_id / export["id"] / DUMP).exists()
    with pytest.raises(StepFailedError, match="no data key"):
        local_store(t).read(t.tenant_id, export["id"], DUMP)
    # Gone is gone: no restore, and the next purge finds nothing.
    code, output = tenantctl("restore", t.tenant_id)
    assert code == 4 and "is purged" in output
    code, output = tenantctl("purge", "--yes")
    assert code == 0 and "nothing to purge" in output


def test_purge_without_a_verified_export_is_refused_and_audited(
    tenant_folder: TenantFolder,
) -> None:
    t = tenant_folder
    deleted(t)
    with psycopg.connect(t.database_url) as conn:  # the export is lost
        conn.execute("DELETE FROM tenant_exports WHERE tenant_id = %s", (t.tenant_id,))

    code, output = tenantctl("purge", t.tenant_id, "--yes")

    assert code == 4, output
    assert "no verified export" in output and "--without-export" in output
    assert as_json("get", t.tenant_id)["status"] == "deleted"
    assert t.admin_count("customers") == 3
    assert audit_actions(t.tenant_id).count("purge.refused") == 1
    code, output = tenantctl("purge", t.tenant_id, "--without-export")
    assert code == 2 and "confirm with --yes" in output  # no terminal

    code, output = tenantctl("purge", t.tenant_id, "--without-export", "--yes")

    assert code == 0, output
    assert_gone(t)
    assert "purge.without_export" in audit_actions(t.tenant_id)
    (receipt,) = receipts(t.tenant_id)
    assert receipt["detail"]["export"].startswith("none")


def test_purge_waits_for_the_retention_window(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    assert tenantctl("create", "-f", str(t.file))[0] == 0  # retention_days: 30 (default)
    clock = FakeClock(datetime.now(UTC))
    session = service.open_session(clock=clock)
    try:
        assert offboarding.delete(session, t.tenant_id).status == "succeeded"
        due = session.store.get_tenant(t.tenant_id)["purge_after"]
        assert due == clock.now + timedelta(days=30)

        clock.advance(timedelta(days=30).total_seconds() - 1)
        assert offboarding.purge(session) == []
        (refused,) = offboarding.purge(session, tenant_ids=[t.tenant_id])
        assert (refused.status, refused.exit_code) == ("refused", 4)
        assert "retention runs until" in refused.message
        assert session.store.get_tenant(t.tenant_id)["status"] == "deleted"

        clock.advance(1)
        (purged,) = offboarding.purge(session)
        assert (purged.tenant_id, purged.status) == (t.tenant_id, "succeeded")
        with pytest.raises(service.ControlPlaneError, match="not recorded"):
            offboarding.purge(session, tenant_ids=["no-such-tenant"])
    finally:
        session.store.engine.dispose()
    assert_gone(t)


@pytest.mark.slow
def test_kill_after_every_purge_step_then_purge_again_converges(
    tenant_folder: TenantFolder, cli_env: dict[str, str]
) -> None:
    t = tenant_folder
    export = deleted(t)
    for step in PURGE_STEPS:  # each run resumes the purge and dies one step further on
        crash(cli_env, step, "purge", t.tenant_id, "--yes")

    code, output = tenantctl("purge", t.tenant_id, "--yes")

    assert code == 0, output
    assert_gone(t)
    (receipt,) = receipts(t.tenant_id)
    assert receipt["detail"]["export"]["checksum"] == export["checksum"]
    operations = json.loads(tenantctl("describe", t.tenant_id, "-o", "json")[1])["operations"]
    assert [o["status"] for o in operations if o["kind"] == "purge"] == ["succeeded"]


@pytest.mark.slow
def test_purge_of_an_upgraded_tenant_removes_its_retired_copy_too(
    tenant_folder: TenantFolder,
) -> None:
    t = tenant_folder
    write_tenant(t.folder, t.tenant_id, source="./data/", lifecycle=DUE)
    assert tenantctl("create", "-f", str(t.file))[0] == 0
    code, output = tenantctl("upgrade", t.tenant_id, "--tier", "enterprise")
    assert code == 0, output
    assert t.admin_count("customers") == 3  # the standard schema, kept read-only
    assert tenantctl("delete", t.tenant_id, "--yes")[0] == 0

    code, output = tenantctl("purge", t.tenant_id, "--yes")

    assert code == 0, output
    assert_gone(t)  # the retired schema in the shared database too
    with psycopg.connect(t.shared_url()) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (t.schema,))
        assert found.fetchall() == []  # and the dedicated database
    assert "tier-change.retired-purged" in audit_actions(t.tenant_id)
