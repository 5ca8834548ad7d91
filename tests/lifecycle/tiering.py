"""Helpers of the tier-change tests: where a tenant's tables are, what they sum to, and
what a migration could leave behind (read as the server's admin, independently of the
code under test)."""

from __future__ import annotations

import json

import psycopg
from psycopg import conninfo, sql
from typer.testing import CliRunner

from tenantctl.main import app
from tests.lifecycle.conftest import TenantFolder

runner = CliRunner()


def tenantctl(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def set_tier(t: TenantFolder, tier: str) -> None:
    text = t.file.read_text()
    current = next(line for line in text.splitlines() if line.strip().startswith("tier:"))
    t.file.write_text(text.replace(current, f"  tier: {tier}"))


def dedicated_url(t: TenantFolder) -> str:
    """The tenant's own database (enterprise), as the admin."""
    return conninfo.make_conninfo(t.database_url, dbname=t.schema)


def url_of(t: TenantFolder, tier: str) -> str:
    return t.shared_url() if tier == "standard" else dedicated_url(t)


def sums(url: str, schema: str) -> dict[str, tuple[int, str]]:
    """Rows and an order-independent digest of every table of `schema`."""
    found = {}
    with psycopg.connect(url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        tables = conn.execute(
            "SELECT relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY 1",
            (schema,),
        ).fetchall()
        for (table,) in tables:
            query = sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(md5(r::text), '' ORDER BY md5(r::text)),"
                " '')) FROM {} r"
            ).format(sql.Identifier(schema, table))
            count, digest = conn.execute(query).fetchone() or (0, "")
            found[table] = (int(count), str(digest))
    return found


def leftovers(t: TenantFolder) -> list[str]:
    """Replication slots, publications and subscriptions of the tenant's migrations, and
    table-sync slots of anyone's (nothing may be left once a tier change is over)."""
    name = f"tcm_{t.schema}"
    found: list[str] = []
    with psycopg.connect(t.shared_url()) as conn:
        for (slot,) in conn.execute(
            "SELECT slot_name::text FROM pg_replication_slots"
            " WHERE slot_name = %s OR slot_name LIKE 'pg\\_%%\\_sync\\_%%'",
            (name,),
        ):
            found.append(f"slot {slot}")
        for (sub,) in conn.execute(
            "SELECT subname::text FROM pg_subscription WHERE subname = %s", (name,)
        ):
            found.append(f"subscription {sub}")
        for (pub,) in conn.execute(
            "SELECT pubname::text FROM pg_publication WHERE pubname = %s", (name,)
        ):
            found.append(f"publication {pub} (shared)")
    if database_exists(t):
        with psycopg.connect(dedicated_url(t)) as conn:
            for (pub,) in conn.execute(
                "SELECT pubname::text FROM pg_publication WHERE pubname = %s", (name,)
            ):
                found.append(f"publication {pub} (dedicated)")
    return found


def database_exists(t: TenantFolder) -> bool:
    with psycopg.connect(t.shared_url()) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (t.schema,)).fetchone()
    return row is not None


def recorded_tier(t: TenantFolder) -> str:
    result = runner.invoke(app, ["get", t.tenant_id, "-o", "json"])
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["tier"])


def workspace_resources(t: TenantFolder, module: str) -> int:
    """Resources a tenant's terraform workspace of `module` still manages (0: none/gone)."""
    state = t.data_dir / "terraform" / "workspaces" / t.tenant_id / module / "terraform.tfstate"
    if not state.exists():
        return 0
    return len(json.loads(state.read_text()).get("resources", []))
