"""Benchmark a tier change: standard -> enterprise with 1,000,000 rows, beside a raw dump.

Onboards one standard tenant on a fresh embedded Postgres (wal_level=logical, render
mode), fills its schema with `--rows` rows, then runs the `tier-change` flow through the
service (Terraform, logical replication, freeze, checksums, cut-over) and reads the
write freeze it recorded. In the same run, the same schema goes through a raw
`pg_dump -Fc | pg_restore` into a scratch database, for comparison. Prints JSON.

Usage: .venv/bin/python bench/upgrade.py [--rows 1000000]
(`bench/run.py` fails the run if the write freeze exceeds 2 s.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pgserver
import psycopg
from psycopg import conninfo, sql

from controlplane import service
from controlplane.drivers import postgres, postgres_dump
from controlplane.service import lifecycle, upgrading
from controlplane.state import database
from controlplane.steps import migration

TENANT = "bench-up"
SCHEMA = "tenant_bench_up"
APP = f"{SCHEMA}_app"


def _tenant_file(folder: Path) -> Path:
    folder.mkdir(parents=True)
    path = folder / f"{TENANT}.yaml"
    path.write_text(
        "tenant:\n"
        f"  id: {TENANT}\n"
        '  name: "Bench upgrade"\n'
        "  tier: standard\n"
        "  region: us-east-1\n"
        "  lifecycle: {deletion_protection: false}\n"
    )
    return path


def _fill(shared: str, rows: int) -> None:
    table = sql.Identifier(SCHEMA, "orders")
    with psycopg.connect(shared, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id bigserial PRIMARY KEY, tenant_id text NOT NULL DEFAULT {},"
                " sku text NOT NULL, total numeric(12, 2) NOT NULL,"
                " created_at timestamptz NOT NULL DEFAULT now())"
            ).format(table, sql.Literal(TENANT))
        )
        conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(table, sql.Identifier(APP)))
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (sku, total) SELECT 'sku-' || (g %% 5000), (g %% 100000) / 100.0"
                " FROM generate_series(1, %s) g"
            ).format(table),
            (rows,),
        )
        conn.execute(sql.SQL("ANALYZE {}").format(table))


def _dump_restore(server_uri: str, shared: str) -> float:
    """Seconds for `pg_dump -Fc -n SCHEMA | pg_restore` into a new database."""
    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench_restore")
    target = conninfo.make_conninfo(server_uri, dbname="bench_restore")
    started = time.monotonic()
    dump = subprocess.Popen(
        [postgres_dump.binary("pg_dump"), "-Fc", "-n", SCHEMA],
        env={**os.environ, **postgres.libpq_env(shared)},
        stdout=subprocess.PIPE,
    )
    subprocess.run(
        [postgres_dump.binary("pg_restore"), "--no-owner", "--dbname=bench_restore"],
        env={**os.environ, **postgres.libpq_env(target)},
        stdin=dump.stdout,
        check=True,
    )
    if dump.wait() != 0:
        msg = "pg_dump failed"
        raise SystemExit(msg)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-upgrade-") as tmp:
        root = Path(tmp)
        server = pgserver.get_server(root / "pg", cleanup_mode="stop")
        database.enable_logical_replication(server)
        uri = str(server.get_uri())
        os.environ.update(TENANTCTL_DATABASE_URL=uri, TENANTCTL_DATA_DIR=str(root / "data"))
        config, sources = service.inputs.load([_tenant_file(root / "configs")], None)
        session = lifecycle.open_session(out_dir=root / "out")
        created = lifecycle.create(session, sources[0], config)
        if created.exit_code:
            raise SystemExit(created.message)
        shared = conninfo.make_conninfo(uri, dbname="tenantctl_shared")
        _fill(shared, args.rows)

        started = time.monotonic()
        outcome = upgrading.change_tier(session, TENANT, "enterprise")
        total = time.monotonic() - started
        steps = session.store.load_steps(outcome.operation_id)
        resumed = steps.get(migration.RESUME)
        if outcome.exit_code or resumed is None or resumed.status != "done":
            msg = f"tier change failed: {outcome.message}"
            raise SystemExit(msg)
        moved = resumed.outputs  # what `apply` and `upgrade` report (steps.migration.moved)
        frozen = {
            name: round((r.finished_at - r.started_at).total_seconds(), 3)
            for name, r in steps.items()
            if r.started_at and r.finished_at
        }
        dump_restore = _dump_restore(uri, shared)
        session.store.engine.dispose()
    print(
        json.dumps(
            {
                "bench": "upgrade",
                "rows": int(moved["rows"]),
                "method": moved["method"],
                "upgrade_s": round(total, 3),
                "upgrade_rows_per_s": round(int(moved["rows"]) / total),
                "freeze_s": round(float(moved["freeze_seconds"]), 3),
                "target_freeze_s_max": 2.0,
                "dump_restore_s": round(dump_restore, 3),
                "dump_restore_rows_per_s": round(args.rows / dump_restore),
                "step_s": frozen,
            }
        )
    )


if __name__ == "__main__":
    main()
