"""Tier change with the data: `apply` of a changed tier, `upgrade`, `downgrade`, a writer
throughout, and a verification that fails (real Postgres, real terraform, render mode)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from controlplane import service
from controlplane.service import FAULT_ENV, upgrading
from tests.lifecycle.conftest import TenantFolder
from tests.lifecycle.tiering import (
    database_exists,
    dedicated_url,
    leftovers,
    recorded_tier,
    set_tier,
    sums,
    tenantctl,
    url_of,
    workspace_resources,
)

pytestmark = pytest.mark.slow

TENANTCTL = [sys.executable, "-m", "tenantctl.main"]


def _onboard_with_rows(t: TenantFolder, rows: int = 200) -> None:
    """Create the tenant, then let its app write a table with a sequence."""
    code, output = tenantctl("create", "-f", str(t.file))
    assert code == 0, output
    with t.app_connect() as conn:
        conn.execute(
            "CREATE TABLE events (id bigserial PRIMARY KEY, tenant_id text NOT NULL"
            f" DEFAULT '{t.tenant_id}', at timestamptz NOT NULL DEFAULT now(), n int)"
        )
        conn.execute("INSERT INTO events (n) SELECT g FROM generate_series(1, %s) g", (rows,))


def test_apply_of_a_changed_tier_moves_every_row(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    _onboard_with_rows(t)
    before = sums(t.shared_url(), t.schema)
    set_tier(t, "enterprise")

    code, output = tenantctl("plan", "-f", str(t.file), "-o", "yaml")
    assert code == 0, output
    assert "action: tier-change" in output
    assert "create data/events (200 row(s) to move)" in output
    assert "standard -> enterprise, logical replication" in output

    code, output = tenantctl("apply", "-f", str(t.file), "--yes")

    assert code == 0, output
    assert "tier changed" in output
    assert recorded_tier(t) == "enterprise"
    after = sums(dedicated_url(t), t.schema)
    assert after == before  # every table, every row, same checksum
    assert before["events"][0] == 200 and before["customers"][0] == 3
    # The app role reads them from its new database with its own credentials, and writes
    # there (the sequence came along: no duplicate key).
    with t.app_connect(dedicated=True) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (200,)
        assert conn.execute("INSERT INTO events (n) VALUES (0) RETURNING id").fetchone() == (201,)
    # The old schema is kept, read-only for the app.
    with t.app_connect() as conn, pytest.raises(psycopg.Error, match=r"read-only|permission"):
        conn.execute(
            sql.SQL("INSERT INTO {} (n) VALUES (1)").format(sql.Identifier(t.schema, "events"))
        )
    assert sums(t.shared_url(), t.schema) == before
    assert leftovers(t) == []
    code, output = tenantctl("verify", t.tenant_id)
    assert code == 0, output
    # An apply of the same file now changes nothing.
    code, output = tenantctl("apply", "-f", str(t.file), "--yes")
    assert code == 0 and "unchanged" in output, output


def test_upgrade_then_downgrade_round_trip(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    _onboard_with_rows(t)
    before = sums(t.shared_url(), t.schema)

    code, output = tenantctl("upgrade", t.tenant_id, "--tier", "enterprise")
    assert code == 0, output
    assert "standard -> enterprise" in output and "writes frozen" in output
    with t.app_connect(dedicated=True) as conn:
        conn.execute("INSERT INTO events (n) VALUES (-1)")
    moved = sums(dedicated_url(t), t.schema)
    assert moved["events"][0] == 201

    code, output = tenantctl("upgrade", t.tenant_id, "--tier", "standard")
    assert code == 2 and "use `tenantctl downgrade`" in output, output
    code, output = tenantctl("downgrade", t.tenant_id, "--tier", "standard")

    assert code == 0, output
    assert "enterprise -> standard" in output
    assert recorded_tier(t) == "standard"
    assert sums(t.shared_url(), t.schema) == moved  # the stale copy was replaced, not kept
    with t.app_connect() as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (201,)
        conn.execute("INSERT INTO events (n) VALUES (-2)")
    # The retired dedicated database is closed to the app role; nothing replicates.
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        t.app_connect(dedicated=True)
    assert leftovers(t) == []
    assert before["customers"] == moved["customers"]


def test_a_writer_throughout_the_upgrade_loses_nothing(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    _onboard_with_rows(t, rows=10)
    committed: list[int] = []
    refused: list[str] = []
    stop = threading.Event()
    started = threading.Event()

    def writer() -> None:
        # One row per transaction on the standard (shared) database until it refuses.
        while not stop.is_set():
            try:
                with t.app_connect() as conn:
                    while not stop.is_set():
                        row = conn.execute(
                            "INSERT INTO events (n) VALUES (-7) RETURNING id"
                        ).fetchone()
                        conn.commit()
                        assert row is not None
                        committed.append(int(row[0]))
                        if len(committed) >= 20:
                            started.set()
            except psycopg.Error as exc:
                refused.append(str(exc).strip())
                started.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert started.wait(60)
    code, output = tenantctl("upgrade", t.tenant_id, "--tier", "enterprise")
    stop.set()
    thread.join(30)

    assert code == 0, output
    assert refused, "the freeze never refused a write"
    with psycopg.connect(dedicated_url(t)) as conn:
        ids = [
            i
            for (i,) in conn.execute(
                sql.SQL("SELECT id FROM {} WHERE n = -7").format(sql.Identifier(t.schema, "events"))
            )
        ]
    assert sorted(ids) == sorted(committed)  # every committed row, none twice
    assert len(ids) == len(set(ids)) and len(committed) >= 20


def test_a_failed_verification_rolls_back(
    tenant_folder: TenantFolder, cli_env: dict[str, str]
) -> None:
    t = tenant_folder
    _onboard_with_rows(t)
    before = sums(t.shared_url(), t.schema)
    crashed = subprocess.run(
        [*TENANTCTL, "upgrade", t.tenant_id, "--tier", "enterprise"],
        env={**cli_env, FAULT_ENV: "migration.copy"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    # The copy is genuinely different: a row gone from the target.
    with psycopg.connect(dedicated_url(t), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE id = 7").format(sql.Identifier(t.schema, "events"))
        )

    code, output = tenantctl("upgrade", t.tenant_id, "--tier", "enterprise")

    assert code == 6, output
    assert "verification failed, tier change rolled back" in output
    assert "events: 200 row(s) in the source, 199 in the target" in output
    # Still standard, on its old database, intact and writable; the target is gone.
    assert recorded_tier(t) == "standard"
    assert sums(t.shared_url(), t.schema) == before
    with t.app_connect() as conn:
        conn.execute("INSERT INTO events (n) VALUES (0)")
        conn.execute("DELETE FROM events WHERE n = 0")
    assert not database_exists(t)
    assert workspace_resources(t, "dedicated-db-postgres") == 0
    assert leftovers(t) == []
    code, output = tenantctl("describe", t.tenant_id)
    assert "rolled_back" in output

    # The next run starts afresh and succeeds.
    code, output = tenantctl("upgrade", t.tenant_id, "--tier", "enterprise")
    assert code == 0, output
    assert sums(dedicated_url(t), t.schema) == sums(url_of(t, "standard"), t.schema)


def test_purge_retired_removes_the_old_copy_once_due(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    _onboard_with_rows(t)
    code, output = tenantctl("upgrade", t.tenant_id, "--tier", "enterprise")
    assert code == 0, output
    session = service.open_session()
    try:
        kept = upgrading.purge_retired(session, tenant_ids=[t.tenant_id])
        assert [(r.tier, r.removed) for r in kept] == [("standard", False)]
        assert sums(t.shared_url(), t.schema)["events"][0] == 200  # still there, read-only

        due = kept[0].due + timedelta(seconds=1)
        removed = upgrading.purge_retired(session, tenant_ids=[t.tenant_id], now=due)
        again = upgrading.purge_retired(session, tenant_ids=[t.tenant_id], now=due)
    finally:
        session.store.engine.dispose()

    assert [(r.tier, r.removed) for r in removed] == [("standard", True)]
    assert again == []
    assert sums(t.shared_url(), t.schema) == {}  # the retired schema is gone...
    assert workspace_resources(t, "shared-schema") == 0
    with t.app_connect(dedicated=True) as conn:  # ...the tenant and its roles are not
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (200,)
    code, output = tenantctl("audit", "--tenant", t.tenant_id, "-o", "json")
    assert "tier-change.retired-purged" in output


def test_purge_of_a_tenant_removes_its_retired_copy_and_roles(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    t.file.write_text(
        t.file.read_text().replace(
            "{deletion_protection: false}", "{deletion_protection: false, retention_days: 0}"
        )
    )
    _onboard_with_rows(t)
    assert tenantctl("upgrade", t.tenant_id, "--tier", "enterprise")[0] == 0
    code, output = tenantctl("delete", t.tenant_id, "--yes")
    assert code == 0, output

    code, output = tenantctl("purge", t.tenant_id, "--yes")

    assert code == 0, output
    assert workspace_resources(t, "shared-schema") == 0  # the retired copy...
    assert workspace_resources(t, "dedicated-db-postgres") == 0  # ...and the tenant
    assert sums(t.shared_url(), t.schema) == {} and not database_exists(t)
    with psycopg.connect(t.shared_url()) as conn:
        roles = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (f"{t.schema}\\_%",)
        ).fetchall()
    assert roles == []
