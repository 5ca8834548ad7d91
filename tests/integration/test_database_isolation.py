"""The database step against a real Postgres and the real terraform binary.

Two standard tenants in one shared database: every cross-tenant attempt by one tenant's
app role fails, tables created later get RLS forced, drift is found by verify and
repaired by apply, and a no-op re-run starts no terraform process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo

from controlplane.drivers import postgres, terraform
from controlplane.engine.steps import StepContext
from controlplane.errors import ConflictError
from controlplane.models.platform import PlatformConfig, Tier
from controlplane.models.tenants import Tenant
from controlplane.steps import database
from tests.statelock import locked_state

MODULES = Path(__file__).resolve().parents[2] / "terraform" / "modules"
pytestmark = pytest.mark.slow
# Roles are server-wide: ids unique per process keep parallel workers (xdist) apart.
RUN = uuid.uuid4().hex[:6]
A, B, BIG = f"iso-a-{RUN}", f"iso-b-{RUN}", f"iso-big-{RUN}"
SA, SB, BIGS = (f"tenant_{t.replace('-', '_')}" for t in (A, B, BIG))
Setup = tuple[database.DatabaseStep, str]


def make_tenant(tenant_id: str, tier: str = "standard") -> Tenant:
    return Tenant.model_validate(
        {"id": tenant_id, "name": tenant_id.title(), "tier": tier, "region": "us-east-1"}
    )


def build(root: Path, url: str) -> tuple[terraform.Terraform, postgres.TenantDatabases]:
    passwords = postgres.DerivedPasswords(b"test-master-key")

    def secrets(tenant_id: str, module: str) -> dict[str, str]:
        del module
        return {"app_password_verifier": postgres.scram_verifier(passwords.password(tenant_id))}

    env = postgres.libpq_env(url)
    targets = {"shared": terraform.Target(env=env), "dedicated": terraform.Target(env=env)}
    driver = terraform.Terraform(root, MODULES, targets, secrets=secrets)
    return driver, postgres.TenantDatabases({"shared": url, "dedicated": url}, passwords)


@pytest.fixture
def setup(tmp_path: Path, database_url: str) -> Iterator[Setup]:
    driver, checker = build(tmp_path / "tf", database_url)
    step = database.DatabaseStep(driver, checker)
    yield step, database_url
    for tenant_id in (A, B):
        step.destroy(StepContext(make_tenant(tenant_id), PlatformConfig(), "cleanup"))


def app_connection(url: str, tenant_id: str) -> psycopg.Connection:
    role = f"tenant_{tenant_id.replace('-', '_')}_app"
    password = postgres.DerivedPasswords(b"test-master-key").password(tenant_id)
    return psycopg.connect(
        conninfo.make_conninfo(url, user=role, password=password), autocommit=True
    )


def denied(conn: psycopg.Connection, sql: str) -> bool:
    try:
        conn.execute(sql)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def test_cross_tenant_access_is_denied_and_later_tables_get_forced_rls(setup: Setup) -> None:
    step, url = setup
    contexts = {t: StepContext(make_tenant(t), PlatformConfig(), "op") for t in (A, B)}
    for ctx in contexts.values():
        outputs = step.apply(ctx).outputs
        assert outputs["schema"] == f"tenant_{ctx.tenant.id.replace('-', '_')}"
        assert step.verify(ctx) == []

    with app_connection(url, B) as b:
        b.execute("CREATE TABLE orders (id int, tenant_id text)")
        b.execute("INSERT INTO orders VALUES (1, %s)", (B,))
        forced = b.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class"
            " WHERE oid = 'orders'::regclass"
        ).fetchone()
        assert forced == (True, True)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            b.execute("INSERT INTO orders VALUES (2, %s)", (A,))  # RLS WITH CHECK
        assert b.execute("SHOW search_path").fetchone() == (f"{SB}",)
        assert b.execute("SHOW statement_timeout").fetchone() == ("30s",)

    with app_connection(url, A) as a:
        attempts = [
            f"SELECT * FROM {SB}.orders",  # noqa: S608 - fixed test names
            f"INSERT INTO {SB}.orders VALUES (3, 'x')",  # noqa: S608 - fixed test names
            f"CREATE TABLE {SB}.stolen (id int)",
            "CREATE TABLE public.leak (id int)",
            f"SET ROLE {SB}_app",
            f"SET ROLE {SB}_owner",
            f"ALTER TABLE {SB}.orders NO FORCE ROW LEVEL SECURITY",
            f"SELECT tenantctl_admin.secure_schema('{SB}')",  # SECURITY DEFINER: owner only
        ]
        assert [sql for sql in attempts if not denied(a, sql)] == []

    with psycopg.connect(url) as admin:
        executable = admin.execute(
            "SELECT p.proname::text FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace AND n.nspname = 'tenantctl_admin'"
            " WHERE has_function_privilege(%s, p.oid, 'EXECUTE')"
            "    OR has_function_privilege('public', p.oid, 'EXECUTE')",
            (f"{SA}_app",),
        ).fetchall()
    assert executable == []


def test_verify_finds_drift_and_apply_repairs_it(setup: Setup) -> None:
    step, url = setup
    ctx_a, ctx_b = (StepContext(make_tenant(t), PlatformConfig(), "op") for t in (A, B))
    step.apply(ctx_a)
    step.apply(ctx_b)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"GRANT USAGE ON SCHEMA {SB} TO {SA}_app")
        admin.execute(f"GRANT {SB}_owner TO {SA}_app")
    problems = step.verify(ctx_a)
    assert any(f"{SB}" in p and "schemas" in p for p in problems)
    assert any(f"{SB}_owner" in p for p in problems)
    step.apply(ctx_a)
    assert step.verify(ctx_a) == []


def test_unchanged_tenant_fingerprint_is_stable_and_a_tier_limit_change_moves_it(
    setup: Setup,
) -> None:
    step, _ = setup
    ctx = StepContext(make_tenant(A), PlatformConfig(), "op")
    first = step.fingerprint(ctx)
    assert step.fingerprint(ctx) == first
    platform = PlatformConfig.model_validate(
        {
            "tiers": {
                "standard": {
                    **PlatformConfig().tiers[Tier.STANDARD].model_dump(),
                    "database": {"connection_limit": 5, "statement_timeout": "5s"},
                }
            }
        }
    )
    assert step.fingerprint(StepContext(ctx.tenant, platform, "op")) != first


def test_dedicated_database_on_self_hosted_postgres(setup: Setup) -> None:
    step, url = setup
    tenant = make_tenant(BIG, "enterprise")
    ctx = StepContext(tenant, PlatformConfig(), "op")
    try:
        outputs = step.apply(ctx).outputs
        assert outputs["module"] == "dedicated-db-postgres"
        assert outputs["database"] == f"{BIGS}"
        assert step.verify(ctx) == []
        app = conninfo.make_conninfo(url, user=f"{BIGS}_app", dbname=f"{BIGS}")
        with psycopg.connect(app, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int)")
            assert denied(conn, "CREATE TABLE public.leak (id int)")
    finally:
        platform = PlatformConfig()
        unprotected = Tenant.model_validate(
            {**tenant.model_dump(mode="json"), "lifecycle": {"deletion_protection": False}}
        )
        step.apply(StepContext(unprotected, platform, "op"))
        step.destroy(StepContext(unprotected, platform, "op"))
    with psycopg.connect(url) as admin:
        assert (
            admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BIGS,)).fetchone()
            is None
        )


def test_kill_9_during_apply_then_rerun_converges(setup: Setup) -> None:
    """terraform is killed while it holds its state lock and its psql is mid-transaction.

    The test holds the advisory lock the module's SQL takes first, so terraform is stopped
    at a known point (no race with a fast apply); then kill -9, release, re-run.
    """
    step, url = setup
    ctx = StepContext(make_tenant(A), PlatformConfig(), "op")
    driver = step.provisioner
    assert isinstance(driver, terraform.Terraform)
    unit = database.unit_for(ctx.tenant, ctx.platform)
    workspace = driver.prepare(unit)
    with psycopg.connect(url, autocommit=True) as gate:
        gate.execute("SELECT pg_advisory_lock(7311002)")  # apply.sql waits on it
        proc = subprocess.Popen(
            ["terraform", "apply", "-auto-approve", "-input=false"],
            cwd=workspace,
            env=driver.environment(unit),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its psql dies with it, as under `kill -9 -PGID`
        )
        while proc.poll() is None and not _waiting_on_the_gate(gate):
            pass  # bounded by terraform itself: it reaches the gate or exits
        assert proc.poll() is None, "terraform ended before reaching the SQL"
        assert (workspace / ".terraform.tfstate.lock.info").exists()
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        gate.execute("SELECT pg_advisory_unlock(7311002)")

    step.apply(ctx)  # the OS dropped the dead process's lock: no manual step needed
    assert step.verify(ctx) == []


def _waiting_on_the_gate(gate: psycopg.Connection) -> bool:
    found = gate.execute(
        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 7311002 AND NOT granted"
    ).fetchone()
    return found is not None


def test_a_held_state_lock_is_a_conflict_naming_the_lock_and_the_recovery(setup: Setup) -> None:
    step, _ = setup
    ctx = StepContext(make_tenant(A), PlatformConfig(), "op")
    driver = step.provisioner
    assert isinstance(driver, terraform.Terraform)
    driver.lock_timeout = "0s"
    workspace = driver.prepare(database.unit_for(ctx.tenant, ctx.platform))
    lock_id = "3c8a1b7e-0000-4000-8000-000000000001"
    (workspace / ".terraform.tfstate.lock.info").write_text(
        json.dumps({"ID": lock_id, "Operation": "OperationTypeApply", "Who": "ci@runner-7"})
    )
    running = locked_state(workspace / "terraform.tfstate")  # what a running terraform holds
    with running, pytest.raises(ConflictError) as caught:
        step.apply(ctx)
    message = caught.value.message
    assert lock_id in message
    assert f"terraform -chdir={workspace} force-unlock {lock_id}" in message
    assert "ci@runner-7" in message
    step.apply(ctx)  # lock released: converges
    assert step.verify(ctx) == []


def test_plan_reads_terraform_plan_json(setup: Setup) -> None:
    step, _ = setup
    tenant = make_tenant(A)
    ctx = StepContext(tenant, PlatformConfig(), "op")
    assert [c.action for c in step.plan(ctx)] == ["create"]  # never applied: no process
    step.apply(ctx)
    assert [c.action for c in step.plan(ctx)] == ["noop"]
    limits = {"connection_limit": 5, "statement_timeout": "5s"}
    standard = PlatformConfig().tiers[Tier.STANDARD].model_dump()
    tighter = PlatformConfig.model_validate(
        {"tiers": {"standard": {**standard, "database": limits}}}
    )
    changes = step.plan(StepContext(tenant, tighter, "op"))
    assert [(c.action, c.target) for c in changes] == [
        ("replace", "database/module.database.terraform_data.grants")
    ]
