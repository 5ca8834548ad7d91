"""`tenantctl delete` and `export`: deletion protection, a verified encrypted export,
traffic off, `deleted` with a purge date; a crash at any step boundary is finished by
running delete again.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from controlplane.drivers import exports, postgres, postgres_dump
from controlplane.errors import StepFailedError
from controlplane.models.exports import DUMP, MANIFEST
from controlplane.service import FAULT_ENV
from tenantctl.main import app
from tests.lifecycle.conftest import TenantFolder, write_tenant
from tests.lifecycle.test_suspend import _traffic_off

runner = CliRunner()
TENANTCTL = [sys.executable, "-m", "tenantctl.main"]
DELETE_STEPS = (
    "delete.hold",
    "suspend.ingress",
    "suspend.dns",
    "suspend.login",
    "export",
    "delete.mark",
)


def tenantctl(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def as_json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "-o", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def audit_actions(tenant_id: str) -> list[str]:
    return [e["action"] for e in as_json("audit", "--tenant", tenant_id, "--limit", "500")]


def local_store(t: TenantFolder) -> exports.LocalExports:
    return exports.LocalExports(t.data_dir / "exports", postgres.load_master_key(t.data_dir))


def crash(cli_env: dict[str, str], step: str, *args: str) -> None:
    """Run tenantctl in a process that SIGKILLs itself right after `step` is recorded."""
    done = subprocess.run(
        [*TENANTCTL, *args],
        env={**cli_env, FAULT_ENV: step},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, (step, done.stdout, done.stderr)


def test_delete_of_a_protected_tenant_is_refused_and_audited(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    write_tenant(t.folder, t.tenant_id, source="./data/", lifecycle="{deletion_protection: true}")
    assert tenantctl("create", "-f", str(t.file))[0] == 0

    code, output = tenantctl("delete", t.tenant_id, "--yes")

    assert code == 4, output
    assert "lifecycle.deletion_protection is on" in output and "--force" in output
    assert as_json("get", t.tenant_id)["status"] == "active"
    with t.app_connect() as conn:  # nothing was touched
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (3,)
    assert audit_actions(t.tenant_id).count("delete.refused") == 1
    # --force needs a confirmation: with no terminal that is --yes.
    code, output = tenantctl("delete", t.tenant_id, "--force")
    assert code == 2 and "confirm with --yes" in output
    assert as_json("get", t.tenant_id)["status"] == "active"

    code, output = tenantctl("delete", t.tenant_id, "--force", "--yes")

    assert code == 0, output
    assert as_json("get", t.tenant_id)["status"] == "deleted"
    assert "delete.forced" in audit_actions(t.tenant_id)


def test_delete_takes_a_verified_encrypted_export_then_marks_the_tenant_deleted(
    tenant_folder: TenantFolder,
) -> None:
    t = tenant_folder
    assert tenantctl("create", "-f", str(t.file))[0] == 0
    rows = t.checksums()
    started = datetime.now(UTC).replace(microsecond=0)  # `get` shows whole seconds

    code, output = tenantctl("delete", t.tenant_id, "--yes")

    assert code == 0, output
    assert all(step in output for step in DELETE_STEPS)
    row = as_json("get", t.tenant_id)
    assert row["status"] == "deleted"
    purge_after = datetime.fromisoformat(row["purge_after"])
    assert started + timedelta(days=30) <= purge_after <= datetime.now(UTC) + timedelta(days=30)
    _traffic_off(t)
    assert t.checksums() == rows  # the data stays until purge
    (export,) = yaml.safe_load(tenantctl("describe", t.tenant_id)[1])["exports"]
    assert export["verified_at"] is not None
    # On disk: ciphertext only; read back with the tenant's data key it is the dump.
    folder = t.data_dir / "exports" / t.tenant_id / export["id"]
    assert export["location"] == folder.resolve().as_uri() + "/"
    sealed = (folder / DUMP).read_bytes()
    assert not sealed.startswith(b"PGDMP") and b"Hopper" not in sealed
    dump = local_store(t).read(t.tenant_id, export["id"], DUMP)
    assert dump is not None and dump.startswith(b"PGDMP") and len(dump) == export["size"]
    manifest = json.loads(local_store(t).read(t.tenant_id, export["id"], MANIFEST) or b"")
    assert manifest["files"][DUMP]["sha256"] == export["checksum"]
    assert manifest["hostnames"] == {f"{t.tenant_id}.tenants.example.com": "subdomain"}
    assert manifest["spec"]["id"] == t.tenant_id
    listed = postgres_dump.Dumps({}).contents(dump)
    assert {"customers", "orders"} <= {e.split()[-2] for e in listed if "TABLE DATA" in e}

    # A deleted tenant is deleted: neither delete nor apply takes it anywhere. Its
    # unchanged file (a CI directory apply) is reported and left, exit 0, like a suspended
    # tenant's; a changed one is refused until it is restored.
    code, output = tenantctl("delete", t.tenant_id, "--yes")
    assert code == 4 and f"tenantctl restore {t.tenant_id}" in output
    code, output = tenantctl("apply", "-f", str(t.file), "--yes", "-o", "json")
    assert code == 0 and '"result": "deleted"' in output, output
    t.file.write_text(t.file.read_text().replace("name: ", "name: Renamed ", 1))
    code, output = tenantctl("apply", "-f", str(t.file), "--yes")
    assert code == 4 and f"tenant '{t.tenant_id}' is deleted: apply leaves it so" in output
    assert as_json("get", t.tenant_id)["status"] == "deleted"
    assert t.checksums() == rows


def test_export_leaves_the_tenant_as_it_is(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    assert tenantctl("create", "-f", str(t.file))[0] == 0

    code, output = tenantctl("export", t.tenant_id)

    assert code == 0, output
    assert as_json("get", t.tenant_id)["status"] == "active"
    with t.app_connect() as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (5,)
    assert tenantctl("export", t.tenant_id)[0] == 0  # a second export is another one
    detail = yaml.safe_load(tenantctl("describe", t.tenant_id)[1])
    assert len({e["id"] for e in detail["exports"] if e["verified_at"]}) == 2


def test_a_local_export_changed_or_moved_on_disk_does_not_decrypt(tmp_path: Path) -> None:
    store = exports.LocalExports(tmp_path, b"master key")
    store.write("acme", "op-1", {DUMP: b"PGDMP data"})
    path = tmp_path / "acme" / "op-1" / DUMP
    assert store.read("acme", "op-1", DUMP) == b"PGDMP data"
    assert store.read("acme", "op-2", DUMP) is None
    (tmp_path / "acme" / "op-2").mkdir()
    (tmp_path / "acme" / "op-2" / DUMP).write_bytes(path.read_bytes())
    with pytest.raises(StepFailedError, match="does not decrypt"):
        store.read("acme", "op-2", DUMP)  # copied to another export
    sealed = bytearray(path.read_bytes())
    sealed[-1] ^= 0xFF
    path.write_bytes(bytes(sealed))
    with pytest.raises(StepFailedError, match="does not decrypt"):
        store.read("acme", "op-1", DUMP)
    assert store.shred_problems("acme")  # the wrapped data key is there
    store.shred("acme")
    assert store.shred_problems("acme") == []
    with pytest.raises(StepFailedError, match="no data key"):
        store.read("acme", "op-1", DUMP)


@pytest.mark.slow
def test_kill_after_every_delete_step_then_delete_again_converges(
    tenant_folder: TenantFolder, cli_env: dict[str, str]
) -> None:
    t = tenant_folder
    assert tenantctl("create", "-f", str(t.file))[0] == 0
    rows = t.checksums()
    # Each run resumes the same operation and is killed one step further on.
    for step in DELETE_STEPS:
        crash(cli_env, step, "delete", t.tenant_id, "--yes")

    code, output = tenantctl("delete", t.tenant_id, "--yes")

    assert code == 0, output
    assert as_json("get", t.tenant_id)["status"] == "deleted"
    operations = yaml.safe_load(tenantctl("describe", t.tenant_id)[1])["operations"]
    deletes = [o for o in operations if o["kind"] == "delete"]
    assert [o["status"] for o in deletes] == ["succeeded"]
    (export,) = yaml.safe_load(tenantctl("describe", t.tenant_id)[1])["exports"]
    assert export["id"] == deletes[0]["id"] and export["verified_at"] is not None
    exported = [p.name for p in (t.data_dir / "exports" / t.tenant_id).iterdir() if p.is_dir()]
    assert exported == [export["id"]]  # one export, never a second one
    assert t.checksums() == rows
    _traffic_off(t)
    applied = Counter(
        e["detail"]["step"]
        for e in as_json("audit", "--tenant", t.tenant_id, "--limit", "500")
        if e["action"] == "step.applied" and e["detail"]["operation"] == export["id"]
    )
    assert applied == Counter(dict.fromkeys(DELETE_STEPS, 1))


@pytest.mark.usefixtures("cli_env")
def test_delete_restore_and_export_of_an_unknown_tenant_are_exit_3() -> None:
    for command in ("delete", "restore", "export"):
        code, output = tenantctl(command, "no-such-tenant", *(["--yes"] * (command == "delete")))
        assert code == 3 and "'no-such-tenant' is not recorded" in output


@pytest.mark.parametrize("command", ["export", "delete", "purge", "restore"])
def test_help_explains_each_offboarding_command_with_an_example(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "Example" in result.output and f"tenantctl {command} " in result.output
