"""A Postgres outage is an outage (retryable `PostgresError`, exit 5), never drift to re-apply.

A failed connection as the tenant is told apart by asking the server as its admin: down
for the admin too is an outage; up for the admin means the tenant's setup is broken,
which is a verify problem that the next apply repairs.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo
from typer.testing import CliRunner

from controlplane.drivers import postgres
from controlplane.engine.steps import StepContext
from controlplane.errors import PostgresError
from controlplane.models.platform import PlatformConfig
from controlplane.steps import database
from tenantctl.main import app
from tests.conftest import EXAMPLES
from tests.integration.test_database_isolation import build, make_tenant

TENANT = f"outage-{uuid.uuid4().hex[:6]}"
ROLE = f"tenant_{TENANT.replace('-', '_')}_app"
EXPECTED = {"schema": f"tenant_{TENANT.replace('-', '_')}", "app_role": ROLE}
PASSWORDS = postgres.DerivedPasswords(b"test-master-key")
Applied = tuple[database.DatabaseStep, StepContext, str]


def dead_server(tmp_path: Path) -> str:
    """A server URL whose socket directory has no server in it: refused at once."""
    return f"postgresql://postgres@/postgres?host={tmp_path}"


@pytest.fixture
def applied(tmp_path: Path, database_url: str) -> Iterator[Applied]:
    driver, checker = build(tmp_path / "tf", database_url)
    step = database.DatabaseStep(driver, checker)
    ctx = StepContext(make_tenant(TENANT), PlatformConfig(), "op")
    step.apply(ctx)
    yield step, ctx, database_url
    step.destroy(ctx)


def test_an_unreachable_server_raises_a_retryable_postgres_error(tmp_path: Path) -> None:
    checker = postgres.TenantDatabases({"shared": dead_server(tmp_path)}, PASSWORDS)
    with pytest.raises(PostgresError) as caught:
        checker.check(TENANT, "shared", EXPECTED)
    error = caught.value
    assert (error.retryable, error.exit_code) == (True, 5)
    assert f"the shared Postgres (host={tmp_path} dbname=postgres) is unavailable" in error.message


@pytest.mark.slow
def test_a_broken_tenant_on_a_running_server_is_a_problem_that_apply_repairs(
    applied: Applied,
) -> None:
    step, ctx, url = applied
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"ALTER ROLE {ROLE} NOLOGIN")
    problems = step.verify(ctx)
    assert len(problems) == 1
    assert ROLE in problems[0]
    assert "not permitted to log in" in problems[0]
    step.apply(ctx)
    assert step.verify(ctx) == []


@pytest.mark.slow
def test_an_app_role_using_all_its_connections_is_retryable_not_drift(applied: Applied) -> None:
    step, ctx, url = applied
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"ALTER ROLE {ROLE} CONNECTION LIMIT 1")
    app_url = conninfo.make_conninfo(url, user=ROLE)
    with (
        psycopg.connect(app_url, password=PASSWORDS.password(TENANT)),
        pytest.raises(PostgresError) as caught,
    ):
        step.verify(ctx)
    assert caught.value.retryable is True
    assert f"{ROLE} uses every connection its limit allows" in caught.value.message
    assert step.verify(ctx) == []  # its one connection is free again


@pytest.mark.slow
def test_verify_exits_5_when_the_shared_server_is_down(
    cli_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    configs = tmp_path / "tenant-configs"
    configs.mkdir()
    shutil.copy(EXAMPLES / "platform.yaml", configs)
    mine = f"down-{uuid.uuid4().hex[:8]}"
    (configs / "mine.yaml").write_text(
        f"tenant: {{id: {mine}, name: Mine, tier: standard, region: us-east-1}}\n"
    )
    applied = runner.invoke(app, ["apply", "-f", str(configs), "--yes"])
    assert applied.exit_code == 0, applied.output

    monkeypatch.setenv("TENANTCTL_SHARED_DATABASE_URL", dead_server(tmp_path / "gone"))
    result = runner.invoke(app, ["verify", mine])
    assert result.exit_code == 5, result.output
    assert "shared Postgres" in result.output
    assert "unavailable" in result.output
