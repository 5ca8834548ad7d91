"""`tenantctl restore`: a deleted, not yet purged tenant comes back as it was."""

from __future__ import annotations

import json

import pytest

from tests.lifecycle.conftest import TenantFolder
from tests.lifecycle.test_delete import as_json, crash, tenantctl

RESTORE_STEPS = ("restore.hold", "resume.login", "network", "dns", "activate")
RENDERED = ("kubernetes/network.yaml", "dns.yaml")


def test_restore_brings_a_deleted_tenant_back_as_it_was(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    assert tenantctl("create", "-f", str(t.file))[0] == 0
    rows = t.checksums()
    files = {name: t.rendered(name) for name in RENDERED}
    assert tenantctl("delete", t.tenant_id, "--yes")[0] == 0

    code, output = tenantctl("restore", t.tenant_id)

    assert code == 0, output
    assert all(step in output for step in RESTORE_STEPS)
    row = as_json("get", t.tenant_id)
    assert (row["status"], row["purge_after"]) == ("active", None)
    assert t.checksums() == rows  # per-table checksums equal
    assert {name: t.rendered(name) for name in RENDERED} == files
    with t.app_connect() as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (3,)
    assert as_json("purge", "--dry-run") == []  # no longer a purge candidate
    finished = [
        e["detail"]["kind"]
        for e in as_json("audit", "--tenant", t.tenant_id)
        if e["action"] == "operation.succeeded"
    ]
    assert finished == ["restore", "delete", "onboard"]  # newest first


def test_restore_needs_a_deleted_tenant(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    assert tenantctl("create", "-f", str(t.file))[0] == 0

    code, output = tenantctl("restore", t.tenant_id)

    assert code == 4 and "needs it deleted" in output
    assert as_json("get", t.tenant_id)["status"] == "active"


@pytest.mark.slow
def test_kill_after_every_restore_step_then_restore_again_converges(
    tenant_folder: TenantFolder, cli_env: dict[str, str]
) -> None:
    t = tenant_folder
    assert tenantctl("create", "-f", str(t.file))[0] == 0
    rows = t.checksums()
    assert tenantctl("delete", t.tenant_id, "--yes")[0] == 0
    for step in RESTORE_STEPS:  # each run resumes the restore and dies one step further on
        crash(cli_env, step, "restore", t.tenant_id)

    code, output = tenantctl("restore", t.tenant_id)

    assert code == 0, output
    assert as_json("get", t.tenant_id)["status"] == "active"
    assert t.checksums() == rows
    operations = json.loads(tenantctl("describe", t.tenant_id, "-o", "json")[1])["operations"]
    assert [o["status"] for o in operations if o["kind"] == "restore"] == ["succeeded"]
