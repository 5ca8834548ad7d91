"""`tenantctl suspend` / `resume`: traffic off and back, data untouched, never by `apply`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from controlplane.service import FAULT_ENV
from tenantctl.main import app
from tests.lifecycle.conftest import TenantFolder

runner = CliRunner()
TENANTCTL = [sys.executable, "-m", "tenantctl.main"]
SUSPEND_STEPS = ("suspend.hold", "suspend.ingress", "suspend.dns", "suspend.login", "suspend.mark")


def tenantctl(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _status(tenant_id: str) -> str:
    result = runner.invoke(app, ["get", tenant_id, "-o", "json"])
    return str(json.loads(result.stdout)["status"])


def _traffic_off(t: TenantFolder) -> None:
    """Ingress denied, DNS on the suspended target, the app role unable to log in."""
    network = t.rendered("kubernetes/network.yaml")
    assert "allow-ingress-gateway" not in network and "default-deny" in network
    dns = t.rendered("dns.yaml")
    assert "suspended.tenants.example.com" in dns and "ingress.tenants" not in dns
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        t.app_connect()


def test_suspend_then_resume(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    assert tenantctl("create", "-f", str(t.file))[0] == 0
    before = {n: t.rendered(n) for n in ("kubernetes/network.yaml", "dns.yaml")}

    code, output = tenantctl("suspend", t.tenant_id, "--yes")

    assert code == 0, output
    assert all(step in output for step in SUSPEND_STEPS)
    assert _status(t.tenant_id) == "suspended"
    _traffic_off(t)
    assert (t.admin_count("customers"), t.admin_count("orders")) == (3, 5)

    code, output = tenantctl("resume", t.tenant_id)

    assert code == 0, output
    assert _status(t.tenant_id) == "active"
    assert {n: t.rendered(n) for n in before} == before
    with t.app_connect() as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (3,)
    code, output = tenantctl("audit", "--tenant", t.tenant_id, "-o", "json")
    finished = [
        e["detail"]["kind"] for e in json.loads(output) if e["action"] == "operation.succeeded"
    ]
    assert finished == ["resume", "suspend", "onboard"]  # newest first


def test_apply_of_a_suspended_tenant_leaves_it_suspended(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    assert tenantctl("create", "-f", str(t.file))[0] == 0
    assert tenantctl("suspend", t.tenant_id, "--yes")[0] == 0
    suspended = t.rendered("kubernetes/network.yaml")

    # Unchanged file (a CI directory apply): reported, exit 0, nothing touched.
    code, output = tenantctl("apply", "-f", str(t.file), "--yes", "-o", "json")
    assert code == 0, output
    assert '"result": "suspended"' in output
    assert t.rendered("kubernetes/network.yaml") == suspended

    # A changed file is refused until the tenant is resumed.
    t.file.write_text(t.file.read_text().replace("name: ", "name: Renamed ", 1))
    code, output = tenantctl("apply", "-f", str(t.file), "--yes")

    assert code == 4
    assert f"tenant '{t.tenant_id}' is suspended: apply leaves it so" in output
    assert f"tenantctl resume {t.tenant_id}" in output
    assert _status(t.tenant_id) == "suspended"
    assert t.rendered("kubernetes/network.yaml") == suspended
    _traffic_off(t)

    # A second suspend changes nothing; after resume, apply converges as usual.
    code, output = tenantctl("suspend", t.tenant_id, "--yes")
    assert code == 0 and output.count("skipped") == len(SUSPEND_STEPS)
    assert tenantctl("resume", t.tenant_id)[0] == 0
    code, output = tenantctl("apply", "-f", str(t.file), "--yes")
    assert code == 0, output
    code, output = tenantctl("describe", t.tenant_id)
    detail = yaml.safe_load(output)
    assert detail["status"] == "active"
    assert {"suspend", "resume"} <= {o["kind"] for o in detail["operations"]}


def test_kill_9_mid_suspend_holds_the_tenant_until_suspend_finishes(
    tenant_folder: TenantFolder, cli_env: dict[str, str]
) -> None:
    t = tenant_folder
    assert tenantctl("create", "-f", str(t.file))[0] == 0
    crashed = subprocess.run(
        [*TENANTCTL, "suspend", t.tenant_id, "--yes"],
        env={**cli_env, FAULT_ENV: "suspend.ingress"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert _status(t.tenant_id) == "suspending"
    assert tenantctl("apply", "-f", str(t.file), "--yes")[0] == 4

    code, output = tenantctl("suspend", t.tenant_id, "--yes")

    assert code == 0, output
    assert _status(t.tenant_id) == "suspended"
    _traffic_off(t)


def test_wrong_state_and_unknown_tenant_exit_codes(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    code, output = tenantctl("suspend", "no-such-tenant", "--yes")
    assert code == 3 and "'no-such-tenant' is not recorded" in output

    assert tenantctl("create", "-f", str(t.file))[0] == 0
    code, output = tenantctl("resume", t.tenant_id)
    assert code == 4 and f"tenant '{t.tenant_id}' is active: `tenantctl resume` needs it" in output


def test_kill_9_mid_resume_then_resume_again_finishes(
    tenant_folder: TenantFolder, cli_env: dict[str, str]
) -> None:
    t = tenant_folder
    assert tenantctl("create", "-f", str(t.file))[0] == 0
    before = t.rendered("kubernetes/network.yaml")
    assert tenantctl("suspend", t.tenant_id, "--yes")[0] == 0
    crashed = subprocess.run(
        [*TENANTCTL, "resume", t.tenant_id],
        env={**cli_env, FAULT_ENV: "resume.login"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert _status(t.tenant_id) == "resuming"

    code, output = tenantctl("resume", t.tenant_id)

    assert code == 0, output
    assert "resume.hold" in output and "skipped" in output  # resumed, not restarted
    assert _status(t.tenant_id) == "active"
    assert t.rendered("kubernetes/network.yaml") == before
    with t.app_connect() as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (5,)
