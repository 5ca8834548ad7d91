"""Bulk isolation checks: inside `TenantDatabases.snapshot()` one catalog query per server.

Three tenants applied once with the real terraform binary (two standard in the shared
database, one enterprise with its own database on the same server). Each case drifts one
thing as the admin, then compares what `check()` reports from the catalog (in a snapshot)
with what it reports logging in as the tenant (outside one), and undoes the drift.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo

from controlplane.drivers import postgres
from controlplane.engine.steps import StepContext
from controlplane.errors import PostgresError
from controlplane.models.platform import PlatformConfig
from controlplane.steps import database
from tests.integration.test_database_isolation import build
from tests.integration.test_postgres_databases import tenant
from tests.integration.test_postgres_outage import dead_server

pytestmark = pytest.mark.slow
RUN = uuid.uuid4().hex[:6]
A, B, E = f"bulk-a-{RUN}", f"bulk-b-{RUN}", f"bulk-e-{RUN}"
SA, SB, SE = (f"tenant_{t.replace('-', '_')}" for t in (A, B, E))


@dataclass(frozen=True)
class Fleet:
    """The applied tenants: admin URL, checker, and each tenant's step context."""

    url: str
    checker: postgres.TenantDatabases
    contexts: dict[str, StepContext]

    def expected(self, tenant_id: str) -> tuple[str, dict[str, str]]:
        """The target and the names `DatabaseStep.verify` checks."""
        names = database.names(self.contexts[tenant_id].tenant)
        expected = {"schema": names["schema"], "app_role": names["app_role"]}
        if tenant_id == E:
            return "dedicated", {**expected, "database": names["schema"]}
        return "shared", expected

    def live(self, tenant_id: str) -> list[str]:
        return self.checker.check(tenant_id, *self.expected(tenant_id))

    def bulk(self, tenant_id: str) -> list[str]:
        with self.checker.snapshot():
            return self.checker.check(tenant_id, *self.expected(tenant_id))

    def admin(self, *statements: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)


@pytest.fixture(scope="module")
def fleet(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = conninfo.make_conninfo(postgres_url, dbname=name)
    driver, checker = build(tmp_path_factory.mktemp("tf"), url)
    step = database.DatabaseStep(driver, checker)
    tiers = {A: "standard", B: "standard", E: "enterprise"}
    contexts = {
        t: StepContext(tenant(t, tier), PlatformConfig(), "op") for t, tier in tiers.items()
    }
    for ctx in contexts.values():
        step.apply(ctx)
    fleet = Fleet(url, checker, contexts)
    fleet.admin(f"CREATE TABLE {SB}.orders (id int, tenant_id text)")  # secured by the trigger
    yield fleet
    for ctx in contexts.values():
        step.destroy(ctx)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_healthy_tenants_agree_and_a_snapshot_opens_one_connection_per_server(
    fleet: Fleet,
) -> None:
    assert [fleet.live(t) for t in (A, B, E)] == [[], [], []]
    before = fleet.checker.connections
    with fleet.checker.snapshot():
        found = [fleet.checker.check(t, *fleet.expected(t)) for t in (A, B, E) * 3]
    assert found == [[]] * 9
    assert fleet.checker.connections - before == 1  # shared and dedicated: one server URL


def test_outside_a_snapshot_every_check_logs_in_as_the_tenant(fleet: Fleet) -> None:
    before = fleet.checker.connections
    assert [fleet.live(t) for t in (A, B, E)] == [[], [], []]
    assert fleet.checker.connections - before == 3


def test_a_snapshot_belongs_to_its_thread(fleet: Fleet) -> None:
    before = fleet.checker.connections
    seen: list[list[str]] = []
    with fleet.checker.snapshot():
        fleet.checker.check(A, *fleet.expected(A))
        other = threading.Thread(target=lambda: seen.append(fleet.live(B)))
        other.start()
        other.join()
    assert seen == [[]]
    assert fleet.checker.connections - before == 2  # the catalog, and B's own login


def test_a_nested_snapshot_leaves_the_outer_one_open(fleet: Fleet) -> None:
    before = fleet.checker.connections
    with fleet.checker.snapshot():
        with fleet.checker.snapshot():
            fleet.checker.check(A, *fleet.expected(A))
        assert fleet.checker.check(B, *fleet.expected(B)) == []
    assert fleet.checker.connections - before == 2  # one catalog read per snapshot


@dataclass(frozen=True)
class Drift:
    reason: str
    tenant: str
    drift: tuple[str, ...]
    undo: tuple[str, ...]
    want: str  # a substring of the one finding


NO_TRIGGER = "ALTER EVENT TRIGGER tenantctl_enforce_rls DISABLE"
TRIGGER = "ALTER EVENT TRIGGER tenantctl_enforce_rls ENABLE ALWAYS"
SECURE = f"SELECT tenantctl_admin.secure_schema('{SB}')"
DRIFTS = [
    Drift(
        "grant on another tenant's schema",
        A,
        (f"GRANT USAGE ON SCHEMA {SB} TO {SA}_app",),
        (f"REVOKE USAGE ON SCHEMA {SB} FROM {SA}_app",),
        f"app role can use other schemas: ['{SB}']",
    ),
    Drift(
        "membership in another tenant's role",
        A,
        (f"GRANT {SB}_owner TO {SA}_app",),
        (f"REVOKE {SB}_owner FROM {SA}_app",),
        f"app role is a member of other roles: ['{SB}_owner']",
    ),
    Drift(
        "a dedicated tenant's membership in another tenant's role",
        E,
        (f"GRANT {SA}_app TO {SE}_app",),
        (f"REVOKE {SA}_app FROM {SE}_app",),
        f"app role is a member of other roles: ['{SA}_app']",
    ),
    Drift(
        "RLS disabled on a tenant_id table",
        B,
        (NO_TRIGGER, f"ALTER TABLE {SB}.orders DISABLE ROW LEVEL SECURITY", TRIGGER),
        (SECURE,),
        "tables with tenant_id lack forced RLS or a policy: ['orders']",
    ),
    Drift(
        "RLS not forced on a tenant_id table",
        B,
        (NO_TRIGGER, f"ALTER TABLE {SB}.orders NO FORCE ROW LEVEL SECURITY", TRIGGER),
        (SECURE,),
        "tables with tenant_id lack forced RLS or a policy: ['orders']",
    ),
    Drift(
        "the policy of a tenant_id table dropped",
        B,
        (f"DROP POLICY tenant_isolation ON {SB}.orders",),
        (SECURE,),
        "tables with tenant_id lack forced RLS or a policy: ['orders']",
    ),
    Drift(
        "CREATE on public",
        A,
        (f"GRANT CREATE ON SCHEMA public TO {SA}_app",),
        (f"REVOKE CREATE ON SCHEMA public FROM {SA}_app",),
        "app role can create objects in schema public",
    ),
    Drift(
        "CONNECT on another tenant's database",
        A,
        (f"GRANT CONNECT ON DATABASE {SE} TO {SA}_app",),
        (f"REVOKE CONNECT ON DATABASE {SE} FROM {SA}_app",),
        f"app role can connect to other tenant databases: ['{SE}']",
    ),
    Drift(
        "search_path changed for the role",
        A,
        (f"ALTER ROLE {SA}_app SET search_path = public",),
        (f"ALTER ROLE {SA}_app SET search_path = {SA}",),
        f"search_path is 'public', not '{SA}'",
    ),
    Drift(
        "search_path changed for the role in its dedicated database",
        E,
        (f'ALTER ROLE {SE}_app IN DATABASE {SE} SET search_path = "$user", public',),
        (f"ALTER ROLE {SE}_app IN DATABASE {SE} RESET search_path",),
        f"search_path is '\"$user\", public', not '{SE}'",
    ),
]


@pytest.mark.parametrize("case", DRIFTS, ids=[d.reason for d in DRIFTS])
def test_each_drift_is_found_alike_in_a_snapshot_and_as_the_tenant(
    fleet: Fleet, case: Drift
) -> None:
    fleet.admin(*case.drift)
    try:
        live, bulk = fleet.live(case.tenant), fleet.bulk(case.tenant)
    finally:
        fleet.admin(*case.undo)
    assert len(live) == 1
    assert case.want in live[0]
    assert bulk == live
    assert (fleet.live(case.tenant), fleet.bulk(case.tenant)) == ([], [])


LOGINS = [
    Drift(
        "NOLOGIN",
        A,
        (f"ALTER ROLE {SA}_app NOLOGIN",),
        (f"ALTER ROLE {SA}_app LOGIN",),
        f'role "{SA}_app" is not permitted to log in',
    ),
    Drift(
        "connection limit 0",
        E,
        (f"ALTER ROLE {SE}_app CONNECTION LIMIT 0",),
        (f"ALTER ROLE {SE}_app CONNECTION LIMIT 20",),
        f'too many connections for role "{SE}_app"',
    ),
    Drift(
        "CONNECT on its own database revoked",
        E,
        (f"REVOKE CONNECT ON DATABASE {SE} FROM {SE}_app",),
        (f"GRANT CONNECT ON DATABASE {SE} TO {SE}_app",),
        f'permission denied for database "{SE}"',
    ),
]


@pytest.mark.parametrize("case", LOGINS, ids=[d.reason for d in LOGINS])
def test_a_login_the_catalog_refuses_is_found_in_a_snapshot(fleet: Fleet, case: Drift) -> None:
    fleet.admin(*case.drift)
    try:
        live, bulk = fleet.live(case.tenant), fleet.bulk(case.tenant)
    finally:
        fleet.admin(*case.undo)
    role = fleet.expected(case.tenant)[1]["app_role"]
    for found in (live, bulk):
        assert len(found) == 1
        assert found[0].startswith(f"cannot check as {role}: ")
        assert case.want in found[0]


def test_a_missing_role_is_found_in_a_snapshot(fleet: Fleet) -> None:
    gone = {"schema": "tenant_gone", "app_role": "tenant_gone_app"}
    with fleet.checker.snapshot():
        found = fleet.checker.check("gone", "shared", gone)
    assert found == ['cannot check as tenant_gone_app: role "tenant_gone_app" does not exist']


def test_an_unreachable_server_in_a_snapshot_raises_the_retryable_outage(tmp_path: Path) -> None:
    passwords = postgres.DerivedPasswords(b"test-master-key")
    checker = postgres.TenantDatabases({"shared": dead_server(tmp_path)}, passwords)
    expected = {"schema": SA, "app_role": f"{SA}_app"}
    errors: list[PostgresError] = []
    with checker.snapshot():
        for _ in range(3):
            with pytest.raises(PostgresError) as caught:
                checker.check(A, "shared", expected)
            errors.append(caught.value)
    assert [(e.retryable, e.exit_code) for e in errors] == [(True, 5)] * 3
    assert (
        f"the shared Postgres (host={tmp_path} dbname=postgres) is unavailable" in errors[0].message
    )
    assert {e.message for e in errors} == {errors[0].message}
    assert checker.connections == 1  # the other tenants of a server that is down wait no more
