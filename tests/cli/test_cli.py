"""The CLI as a user drives it: commands, output formats and one exit code per error class."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from controlplane.state import database
from controlplane.state.store import Store
from tenantctl.main import app
from tests.conftest import EXAMPLES

runner = CliRunner()


def tenantctl(*args: str) -> tuple[int, str]:
    """Exit code and everything printed (stdout and stderr)."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def tenantctl_json(*args: str) -> tuple[int, Any]:
    """Exit code and the parsed stdout of a `-o json` command (progress goes to stderr)."""
    result = runner.invoke(app, [*args, "-o", "json"])
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    folder = tmp_path / "tenant-configs"
    shutil.copytree(EXAMPLES, folder)
    return folder


def test_validate_examples() -> None:
    code, output = tenantctl("validate", "-f", str(EXAMPLES))
    assert (code, "5 tenant file(s) valid" in output) == (0, True)


def test_validate_bad_file_exit_2_names_file_line_field(configs: Path) -> None:
    bad = configs / "bluebird-books.yaml"
    bad.write_text(bad.read_text().replace("tier: standard", "tier: gold"))
    code, output = tenantctl("validate", "-f", str(configs))
    assert code == 2
    assert f"{bad}:4: tenant.tier" in output and "standard, enterprise, premium" in output


def test_schema_is_json_schema() -> None:
    code, output = tenantctl("schema")
    schema = json.loads(output)
    assert code == 0 and schema["properties"]["tenant"]["$ref"].endswith("/Tenant")
    assert schema["$defs"]["Tenant"]["additionalProperties"] is False


@pytest.mark.usefixtures("cli_env")
def test_plan_apply_get_describe_audit(configs: Path) -> None:
    code, plans = tenantctl_json("plan", "-f", str(configs))
    assert code == 0 and {p["action"] for p in plans} == {"create"}

    code, outcomes = tenantctl_json("apply", "-f", str(configs), "--yes")
    assert code == 0 and {o["result"] for o in outcomes} == {"applied"}

    code, plans = tenantctl_json("plan", "-f", str(configs))
    assert {p["action"] for p in plans} == {"unchanged"}

    code, outcomes = tenantctl_json("apply", "-f", str(configs), "--yes")
    assert code == 0 and {o["result"] for o in outcomes} == {"unchanged"}

    code, tenants = tenantctl_json("get")
    assert code == 0 and len(tenants) == 5 and {t["status"] for t in tenants} == {"active"}

    code, output = tenantctl("describe", "tenant-100", "-o", "yaml")
    detail = yaml.safe_load(output)
    assert code == 0 and detail["hosts"] == {
        "acme.tenants.example.com": "subdomain",
        "shop.acme.com": "custom",
    }
    assert [s["status"] for s in detail["steps"]] == ["done"] * len(detail["steps"])

    code, entries = tenantctl_json("audit", "--tenant", "tenant-100")
    actions = [e["action"] for e in entries]
    assert code == 0 and actions.count("operation.succeeded") == 1


@pytest.mark.usefixtures("cli_env")
def test_changed_file_plans_an_update_with_fields(configs: Path) -> None:
    assert tenantctl("apply", "-f", str(configs), "--yes")[0] == 0
    path = configs / "corner-cafe.yaml"
    path.write_text(path.read_text().replace("retention_days: 14", "retention_days: 21"))
    _, listed = tenantctl_json("plan", "-f", str(configs))
    plans = {p["tenant"]: p for p in listed}
    assert plans["corner-cafe"]["action"] == "update"
    assert plans["corner-cafe"]["fields"] == ["lifecycle.retention_days"]
    assert plans["bluebird"]["action"] == "unchanged"


def test_unknown_tenant_exit_3(cli_env: dict[str, str]) -> None:
    code, output = tenantctl("describe", "nobody")
    assert code == 3 and "tenant 'nobody' is not recorded" in output


def test_locked_tenant_exit_4(cli_env: dict[str, str], configs: Path) -> None:
    engine = database.connect(cli_env["TENANTCTL_DATABASE_URL"])
    Store(engine, actor="test").acquire("bluebird", "ci-job-42", wait=0)
    code, output = tenantctl(
        "apply", "-f", str(configs / "bluebird-books.yaml"), "--yes", "--lock-timeout", "0.2"
    )
    assert code == 4 and "locked by ci-job-42" in output
    engine.dispose()


def test_state_store_unreachable_exit_5(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTCTL_DATABASE_URL", "postgresql://app:s3cret@127.0.0.1:1/none")
    code, output = tenantctl("get")
    assert code == 5 and "cannot reach the state store" in output
    assert "s3cret" not in output


@pytest.mark.usefixtures("cli_env")
def test_step_failure_exit_6_hostname_taken_by_recorded_tenant(
    configs: Path, tmp_path: Path
) -> None:
    assert tenantctl("apply", "-f", str(configs / "acme-retail.yaml"), "--yes")[0] == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "copycat.yaml").write_text(
        "tenant:\n  id: copycat\n  name: Copycat\n  tier: standard\n  region: us-east-1\n"
        "  domains:\n    custom: [shop.acme.com]\n"
    )
    code, output = tenantctl("apply", "-f", str(other), "--yes")
    assert code == 6 and "shop.acme.com (tenant 'tenant-100')" in output


@pytest.mark.usefixtures("cli_env")
def test_id_is_immutable_once_recorded(configs: Path) -> None:
    path = configs / "bluebird-books.yaml"
    assert tenantctl("apply", "-f", str(path), "--yes")[0] == 0
    path.write_text(path.read_text().replace("id: bluebird", "id: bluebird-2"))
    code, output = tenantctl("plan", "-f", str(path))
    assert code == 2 and f"{path}:2: tenant.id: id is immutable" in output


def test_help_explains_exit_codes() -> None:
    code, output = tenantctl("--help")
    assert code == 0 and "Exit codes" in output and "6 a step failed" in output
