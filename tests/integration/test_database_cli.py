"""`tenantctl verify` end to end: apply the examples, verify, break isolation, verify again."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo
from typer.testing import CliRunner

from tenantctl.main import app
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow
runner = CliRunner()


def test_verify_exit_codes(cli_env: dict[str, str], tmp_path: Path) -> None:
    configs = tmp_path / "tenant-configs"
    shutil.copytree(EXAMPLES, configs)
    # A tenant of this test alone: roles are server-wide, other tests apply the examples.
    mine = f"verify-{uuid.uuid4().hex[:8]}"
    (configs / "mine.yaml").write_text(
        f"tenant: {{id: {mine}, name: Mine, tier: standard, region: us-east-1}}\n"
    )
    applied = runner.invoke(app, ["apply", "-f", str(configs), "--yes"])
    assert applied.exit_code == 0, applied.output

    for tenant in (mine, "tenant-100"):  # shared schema; dedicated database
        result = runner.invoke(app, ["verify", tenant])
        assert result.exit_code == 0, result.output
        assert f"{tenant} verified" in result.output

    role = f"tenant_{mine.replace('-', '_')}_app"
    shared = conninfo.make_conninfo(cli_env["TENANTCTL_DATABASE_URL"], dbname="tenantctl_shared")
    with psycopg.connect(shared, autocommit=True) as admin:
        admin.execute(f"GRANT CREATE ON SCHEMA public TO {role}")
    try:
        result = runner.invoke(app, ["verify", mine])
        assert result.exit_code == 6
        assert "public" in result.output
    finally:
        with psycopg.connect(shared, autocommit=True) as admin:
            admin.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}")

    assert runner.invoke(app, ["verify", "nobody"]).exit_code == 3


@pytest.mark.parametrize(
    ("setting", "exit_code", "says"),
    [
        ({"TENANTCTL_DATABASE_URL": "mysql://app:s3cret@db/app"}, 2, "TENANTCTL_DATABASE_URL"),
        ({"TENANTCTL_DATA_DIR": "{tmp}/a-file/data"}, 5, "TENANTCTL_DATA_DIR"),
    ],
)
def test_state_store_settings_that_cannot_work_exit_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    setting: dict[str, str],
    exit_code: int,
    says: str,
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.delenv("TENANTCTL_DATABASE_URL", raising=False)
    monkeypatch.setenv("TENANTCTL_DATA_DIR", str(tmp_path / "data"))
    for name, value in setting.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    result = runner.invoke(app, ["get"])
    assert result.exit_code == exit_code, result.output
    assert says in result.output
    assert "s3cret" not in result.output
    assert "unexpected error" not in result.output
