"""`tenantctl verify` end to end: apply the examples, verify, break isolation, verify again."""

from __future__ import annotations

import shutil
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
    applied = runner.invoke(app, ["apply", "-f", str(configs), "--yes"])
    assert applied.exit_code == 0, applied.output

    for tenant in ("bluebird", "tenant-100"):  # shared schema; dedicated database
        result = runner.invoke(app, ["verify", tenant])
        assert result.exit_code == 0, result.output
        assert f"{tenant} verified" in result.output

    shared = conninfo.make_conninfo(cli_env["TENANTCTL_DATABASE_URL"], dbname="tenantctl_shared")
    with psycopg.connect(shared, autocommit=True) as admin:
        admin.execute("GRANT CREATE ON SCHEMA public TO tenant_bluebird_app")
    try:
        result = runner.invoke(app, ["verify", "bluebird"])
        assert result.exit_code == 6
        assert "public" in result.output
    finally:
        with psycopg.connect(shared, autocommit=True) as admin:
            admin.execute("REVOKE CREATE ON SCHEMA public FROM tenant_bluebird_app")

    assert runner.invoke(app, ["verify", "nobody"]).exit_code == 3
