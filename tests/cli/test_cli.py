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
def test_hostname_of_a_recorded_tenant_is_refused_at_plan_time_exit_4(
    configs: Path, tmp_path: Path
) -> None:
    assert tenantctl("apply", "-f", str(configs / "acme-retail.yaml"), "--yes")[0] == 0
    other = tmp_path / "other"
    other.mkdir()
    copycat = other / "copycat.yaml"
    copycat.write_text(
        "tenant:\n  id: copycat\n  name: Copycat\n  tier: standard\n  region: us-east-1\n"
        "  domains:\n    custom: [shop.acme.com]\n"
    )
    want = f"{copycat}:7: tenant.domains.custom[0]: shop.acme.com belongs to recorded tenant"
    for command in (["validate"], ["plan"], ["apply", "--yes"]):
        code, output = tenantctl(*command, "-f", str(other))
        assert code == 4, output
        assert f"{want} 'tenant-100'" in output
    assert tenantctl("validate", "--offline", "-f", str(other))[0] == 0  # the file alone is fine
    assert tenantctl("describe", "copycat")[0] == 3  # nothing recorded, no operation begun
    _, entries = tenantctl_json("audit", "--tenant", "copycat")
    assert entries == []


@pytest.mark.usefixtures("cli_env")
def test_two_recorded_tenants_swapping_subdomains_converge(configs: Path) -> None:
    assert tenantctl("apply", "-f", str(configs), "--yes")[0] == 0
    acme, cafe = configs / "acme-retail.yaml", configs / "corner-cafe.yaml"
    acme_sub = yaml.safe_load(acme.read_text())["tenant"]["domains"]["subdomain"]
    cafe_text = cafe.read_text()
    cafe_sub = yaml.safe_load(cafe_text)["tenant"].get("domains", {}).get("subdomain")
    assert cafe_sub, "corner-cafe names its subdomain"
    acme.write_text(acme.read_text().replace(f"subdomain: {acme_sub}", f"subdomain: {cafe_sub}"))
    cafe.write_text(cafe_text.replace(f"subdomain: {cafe_sub}", f"subdomain: {acme_sub}"))
    code, outcomes = tenantctl_json("apply", "-f", str(configs), "--yes")
    assert code == 0, outcomes
    _, detail = tenantctl_json("describe", "tenant-100")
    assert f"{cafe_sub}.tenants.example.com" in detail["hosts"]


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


@pytest.mark.parametrize(
    "command", [["audit"], ["plan", "-f", str(EXAMPLES)], ["verify", "tenant-100"], ["get"]]
)
def test_state_store_down_is_an_outage_exit_5_never_a_bug(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("TENANTCTL_DATABASE_URL", "postgresql://app:s3cret@127.0.0.1:1/none")
    code, output = tenantctl(*command)
    assert code == 5, output
    assert "cannot reach the state store" in output and "unexpected" not in output
    assert output.count("error:") == 1 and "s3cret" not in output


@pytest.mark.usefixtures("cli_env")
def test_terraform_missing_from_path_exit_5_says_what_to_do(
    configs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    code, output = tenantctl("apply", "-f", str(configs / "bluebird-books.yaml"), "--yes")
    assert code == 5, output
    assert "terraform binary 'terraform' not found: install Terraform" in output
    assert output.count("not found: install Terraform") == 3  # progress line, table, summary
    assert "tenant 'bluebird': tenant 'bluebird'" not in output


@pytest.mark.usefixtures("cli_env")
def test_render_folder_is_part_of_what_was_applied(configs: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "clone-a" / "out", tmp_path / "clone-b" / "out"
    assert tenantctl("apply", "-f", str(configs), "--yes", "--out", str(first))[0] == 0
    code, outcomes = tenantctl_json("apply", "-f", str(configs), "--yes", "--out", str(second))
    assert code == 0 and {o["result"] for o in outcomes} == {"repaired"}
    assert (second / "tenant-100" / "dns.yaml").exists()
    assert tenantctl("verify", "tenant-100")[0] == 0  # from any directory: recorded folder
    (second / "tenant-100" / "dns.yaml").unlink()
    code, output = tenantctl("verify", "tenant-100")
    assert code == 6 and "dns" in output
    assert tenantctl("verify", "tenant-100", "--out", str(first))[0] == 0


@pytest.mark.usefixtures("cli_env")
def test_get_one_tenant_prints_an_object_and_reconcile_says_unchanged(configs: Path) -> None:
    assert tenantctl("apply", "-f", str(configs), "--yes")[0] == 0
    code, output = tenantctl("get", "bluebird", "-o", "yaml")
    assert code == 0 and yaml.safe_load(output)["id"] == "bluebird"
    code, outcomes = tenantctl_json("apply", "-f", str(configs), "--yes", "--reconcile")
    assert code == 0 and {o["result"] for o in outcomes} == {"unchanged"}


def test_missing_platform_file_is_said_out_loud(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "bluebird-books.yaml", tmp_path)
    code, output = tenantctl("validate", "-f", str(tmp_path))
    assert code == 0
    assert f"warning: no platform.yaml found beside {tmp_path}: using built-in defaults" in output


@pytest.mark.usefixtures("cli_env")
def test_identity_is_the_id_moves_keep_the_tenant_copies_make_a_new_one(
    configs: Path, tmp_path: Path
) -> None:
    original = configs / "bluebird-books.yaml"
    assert tenantctl("apply", "-f", str(original), "--yes")[0] == 0
    moved = tmp_path / "elsewhere" / "bluebird.yaml"
    moved.parent.mkdir()
    shutil.copy(configs / "platform.yaml", moved.parent)
    original.rename(moved)
    _, plans = tenantctl_json("plan", "-f", str(moved))
    assert [(p["tenant"], p["action"]) for p in plans] == [("bluebird", "unchanged")]
    copy = moved.parent / "bluebird-copy.yaml"
    copy.write_text(moved.read_text().replace("id: bluebird", "id: bluebird-2"))
    _, plans = tenantctl_json("plan", "-f", str(copy))
    assert [(p["tenant"], p["action"]) for p in plans] == [("bluebird-2", "create")]


@pytest.mark.usefixtures("cli_env")
def test_diff_in_render_mode_is_field_level(configs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert tenantctl("apply", "-f", str(configs), "--yes", "--out", str(out))[0] == 0
    assert tenantctl("diff", "-f", str(configs), "--out", str(out))[0] == 0
    compute = out / "bluebird" / "kubernetes" / "compute.yaml"
    compute.write_text(compute.read_text().replace("pods: '50'", "pods: '500'"))
    code, plans = tenantctl_json("diff", "-f", str(configs), "--out", str(out))
    assert code == 7
    changes = [(p["tenant"], p["action"], c) for p in plans for c in p["changes"]]
    assert [(t, a, c["backend"], c["field"], c["want"], c["have"]) for t, a, c in changes] == [
        ("bluebird", "unchanged", "kubernetes", ".spec.hard.pods", "'50'", "'500'")
    ]


@pytest.mark.usefixtures("cli_env")
def test_plan_names_rendered_files_by_their_real_path(configs: Path) -> None:
    code, plans = tenantctl_json("plan", "-f", str(configs / "bluebird-books.yaml"))
    assert code == 0
    assert "create out/bluebird/dns.yaml" in plans[0]["steps"]
    assert not [s for s in plans[0]["steps"] if "dns/out" in s]


@pytest.mark.usefixtures("cli_env")
def test_drift_reports_every_backend_and_reconcile_repairs_it(configs: Path) -> None:
    assert tenantctl("apply", "-f", str(configs), "--yes")[0] == 0
    assert tenantctl("drift", "-f", str(configs))[0] == 0
    Path("out/bluebird/dns.yaml").unlink()
    network = Path("out/corner-cafe/kubernetes/network.yaml")
    network.write_text(network.read_text() + "---\nkind: NetworkPolicy\n")
    code, rows = tenantctl_json("drift", "-f", str(configs))
    assert code == 7
    assert {(r["tenant"], r["step"]) for r in rows} == {
        ("bluebird", "dns"),
        ("corner-cafe", "network"),
    }
    code, outcomes = tenantctl_json("apply", "-f", str(configs), "--yes", "--reconcile")
    repaired = {o["tenant"] for o in outcomes if o["result"] == "repaired"}
    assert code == 0 and repaired == {"bluebird", "corner-cafe"}
    assert tenantctl("drift", "-f", str(configs))[0] == 0


@pytest.mark.usefixtures("cli_env")
def test_bracketed_field_paths_survive_tables_and_messages(configs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert tenantctl("apply", "-f", str(configs), "--yes", "--out", str(out))[0] == 0
    compute = out / "bluebird" / "kubernetes" / "compute.yaml"
    compute.write_text(compute.read_text().replace("requests.cpu: '4'", "requests.cpu: '40'"))
    code, output = tenantctl("diff", "-f", str(configs), "--out", str(out))
    assert code == 7 and ".spec.hard[requests.cpu]" in output
    code, output = tenantctl("verify", "bluebird")
    assert code == 6 and ".spec.hard[requests.cpu]: want '4', have '40'" in output


def test_verify_help_describes_its_own_options() -> None:
    code, output = tenantctl("verify", "--help")
    assert code == 0 and "beside the tenant files" not in output
    assert "recorded" in output and "--out" in output


def test_help_shows_placeholders_in_angle_brackets() -> None:
    code, output = tenantctl("render", "--help")
    assert code == 0 and "OUT/<tenant-id>/kubernetes/" in output


def test_help_paragraphs_reflow_to_the_terminal_not_the_source_lines() -> None:
    result = CliRunner().invoke(app, ["apply", "--help"], env={"COLUMNS": "200"})
    sentence = (
        "Idempotent: unchanged tenants cost no remote call, and an interrupted run resumes at "
        "the first unfinished step."
    )
    assert result.exit_code == 0 and sentence in result.output
