"""Every database tenantctl manages is closed to PUBLIC: an app role reaches its own only.

Drivers are built the way the service builds them (`wiring.database_drivers`, embedded
default): the state store, the shared database `tenantctl_shared` and the dedicated
databases all live on one server, where tenant roles are server-wide.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo, sql

from controlplane import wiring
from controlplane.drivers import postgres
from controlplane.engine.steps import StepContext
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.steps import database

RUN = uuid.uuid4().hex[:6]
STANDARD, ENTERPRISE = f"conn-s-{RUN}", f"conn-e-{RUN}"
SHARED = "tenantctl_shared"


def tenant(tenant_id: str, tier: str) -> Tenant:
    return Tenant.model_validate(
        {
            "id": tenant_id,
            "name": tenant_id.title(),
            "tier": tier,
            "region": "us-east-1",
            "lifecycle": {"deletion_protection": False},
        }
    )


def sql_name(tenant_id: str) -> str:
    return "tenant_" + tenant_id.replace("-", "_")


def reach(url: str, checker: postgres.TenantDatabases, tenant_id: str, dbname: str) -> str:
    """`ok`, or why the tenant's app role cannot connect to `dbname`."""
    role = f"{sql_name(tenant_id)}_app"
    target = conninfo.make_conninfo(url, user=role, dbname=dbname)
    try:
        with psycopg.connect(target, password=checker.passwords.password(tenant_id)):
            return "ok"
    except psycopg.OperationalError as exc:
        return "denied" if f'permission denied for database "{dbname}"' in str(exc) else str(exc)


def test_ensure_database_quotes_the_name_and_closes_both_databases_to_public(
    database_url: str,
) -> None:
    name = f'weird "{uuid.uuid4().hex[:8]}"; name'
    url = postgres.ensure_database(database_url, name)
    try:
        assert postgres.ensure_database(database_url, name) == url  # idempotent
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
            state_store = str(conninfo.conninfo_to_dict(database_url)["dbname"])
            open_to_public = conn.execute(
                "SELECT datname::text FROM pg_database WHERE datname IN (%s, %s)"
                " AND (has_database_privilege('public', oid, 'CONNECT')"
                "      OR has_database_privilege('public', oid, 'TEMPORARY'))",
                (name, state_store),
            ).fetchall()
        assert open_to_public == []
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


@pytest.mark.slow
def test_app_roles_reach_only_their_own_database(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENANTCTL_DATABASE_URL", database_url)
    monkeypatch.setenv("TENANTCTL_DATA_DIR", str(tmp_path / "data"))
    for env in ("TENANTCTL_SHARED_DATABASE_URL", "TENANTCTL_DEDICATED_DATABASE_URL"):
        monkeypatch.delenv(env, raising=False)
    provisioner, checker = wiring.database_drivers(PlatformConfig())
    step = database.DatabaseStep(provisioner, checker)
    contexts = [
        StepContext(tenant(STANDARD, "standard"), PlatformConfig(), "op"),
        StepContext(tenant(ENTERPRISE, "enterprise"), PlatformConfig(), "op"),
    ]
    state_store = str(conninfo.conninfo_to_dict(database_url)["dbname"])
    own = sql_name(ENTERPRISE)
    try:
        for ctx in contexts:
            step.apply(ctx)
            assert step.verify(ctx) == []
        got = {
            (who, db): reach(database_url, checker, who, db)
            for who in (STANDARD, ENTERPRISE)
            for db in (state_store, SHARED, own)
        }
    finally:
        for ctx in contexts:
            step.destroy(ctx)
    assert got == {
        (STANDARD, state_store): "denied",
        (STANDARD, SHARED): "ok",
        (STANDARD, own): "denied",
        (ENTERPRISE, state_store): "denied",
        (ENTERPRISE, SHARED): "denied",
        (ENTERPRISE, own): "ok",
    }
