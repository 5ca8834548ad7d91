"""Tier change on a server without `wal_level=logical`: the rows move by dump/restore
inside the write freeze, and plan, progress and the final line say so."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pgserver
import psycopg
import pytest

from tests.lifecycle.conftest import make_tenant_folder
from tests.lifecycle.tiering import dedicated_url, leftovers, recorded_tier, sums, tenantctl

pytestmark = pytest.mark.slow


@pytest.fixture
def replica_server() -> Iterator[str]:
    """A server of its own at the default wal_level (replica)."""
    pgdata = Path(tempfile.mkdtemp(prefix="tenantctl-test-replica-"))
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


def test_without_logical_wal_the_rows_move_by_dump_restore(
    replica_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"TENANTCTL_DATABASE_URL": replica_server, "TENANTCTL_DATA_DIR": str(tmp_path / "data")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    with psycopg.connect(replica_server) as conn:
        assert conn.execute("SHOW wal_level").fetchone() == ("replica",)
    t = make_tenant_folder(env, tmp_path / "configs")
    assert tenantctl("create", "-f", str(t.file))[0] == 0
    with t.app_connect() as conn:
        conn.execute(
            "CREATE TABLE events (id bigserial PRIMARY KEY, tenant_id text NOT NULL"
            f" DEFAULT '{t.tenant_id}', n int)"
        )
        conn.execute("INSERT INTO events (n) SELECT g FROM generate_series(1, 50) g")
    before = sums(t.shared_url(), t.schema)
    t.file.write_text(t.file.read_text().replace("tier: standard", "tier: enterprise"))

    code, output = tenantctl("plan", "-f", str(t.file), "-o", "yaml")
    assert code == 0, output
    assert "dump/restore inside the write freeze (wal_level=replica on shared)" in output

    code, output = tenantctl("upgrade", t.tenant_id, "--tier", "enterprise")

    assert code == 0, output
    assert "moved by dump/restore inside the write freeze" in output
    assert recorded_tier(t) == "enterprise"
    assert sums(dedicated_url(t), t.schema) == before
    with t.app_connect(dedicated=True) as conn:  # the sequence came along
        assert conn.execute("INSERT INTO events (n) VALUES (0) RETURNING id").fetchone() == (51,)
    assert leftovers(t) == []
