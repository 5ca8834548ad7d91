"""The state store's guarantees: append-only audit, schema = migrations, host reservations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from controlplane.errors import ConfigError, ConflictError, NotFoundError, PostgresError
from controlplane.state import database
from controlplane.state.store import Store
from controlplane.state.tables import metadata, ours


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = database.connect(database_url)
    yield engine
    engine.dispose()


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"],
)
def test_audit_log_is_append_only(engine: sa.Engine, statement: str) -> None:
    store = Store(engine, actor="test")
    store.audit("tenant.created", "acme", {"why": "test"})
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.text(statement))
    assert [e["action"] for e in store.audit_entries("acme")] == ["tenant.created"]


def test_migrations_match_the_table_definitions(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": ours})
        diffs = compare_metadata(context, metadata)
    assert diffs == []


def test_migrate_twice_is_a_no_op(engine: sa.Engine) -> None:
    database.migrate(engine)
    config = Config()
    config.set_main_option("script_location", str(Path(database.__file__).parent / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head == database.HEAD  # the fast path's constant names the newest migration
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head
        assert database.revision(conn) == head


def test_a_store_behind_head_is_migrated_despite_the_fast_path(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0006'"))
        conn.execute(sa.text("DROP TABLE tenant_reconcile"))  # what 0007 creates
    database.migrate(engine)
    with engine.connect() as conn:
        assert database.revision(conn) == database.HEAD
        assert conn.execute(sa.text("SELECT to_regclass('tenant_reconcile')")).scalar()


def _spec(tenant_id: str) -> dict[str, str]:
    return {"id": tenant_id, "name": tenant_id, "tier": "standard", "region": "us-east-1"}


def test_hostnames_are_reserved_per_tenant(engine: sa.Engine) -> None:
    store = Store(engine, actor="test")
    store.record_tenant(
        _spec("a"), fingerprint="1", source_file="a.yaml", hosts={"shop.a.com": "custom"}
    )
    with pytest.raises(ConflictError, match=r"shop.a.com \(tenant 'a'\)"):
        store.record_tenant(
            _spec("b"), fingerprint="1", source_file="b.yaml", hosts={"shop.a.com": "custom"}
        )
    assert store.resolve_host("SHOP.A.COM") == "a"
    with pytest.raises(NotFoundError):
        store.resolve_host("unknown.example.com")
    # Giving a hostname up frees it for others.
    store.record_tenant(_spec("a"), fingerprint="2", source_file="a.yaml", hosts={})
    store.record_tenant(
        _spec("b"), fingerprint="1", source_file="b.yaml", hosts={"shop.a.com": "custom"}
    )
    assert store.resolve_host("shop.a.com") == "b"
    assert store.get_tenant("a")["generation"] == 2


@pytest.mark.parametrize(
    ("reason", "url"),
    [
        ("no scheme", "not a url"),
        ("another database", "mysql://app:s3cret@db.example.com/app"),
        ("port is not a number", "postgresql://app:s3cret@db.example.com:five/app"),
    ],
)
def test_a_malformed_database_url_is_a_config_error_that_hides_the_password(
    monkeypatch: pytest.MonkeyPatch, reason: str, url: str
) -> None:
    monkeypatch.setenv("TENANTCTL_DATABASE_URL", url)
    with pytest.raises(ConfigError) as caught:
        database.database_url()
    assert caught.value.exit_code == 2, reason
    assert "TENANTCTL_DATABASE_URL" in caught.value.message
    assert "postgresql://USER:PASSWORD@HOST:PORT/DATABASE" in caught.value.message
    assert "s3cret" not in caught.value.message


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h:5433/db", "postgresql+psycopg://u@h:5433/db"),
        ("postgresql+psycopg://u@/db?host=/tmp", "postgresql+psycopg://u@/db?host=/tmp"),
    ],
)
def test_postgres_urls_are_used_through_psycopg(
    monkeypatch: pytest.MonkeyPatch, url: str, want: str
) -> None:
    monkeypatch.setenv("TENANTCTL_DATABASE_URL", url)
    assert database.database_url() == want


def test_a_data_dir_that_cannot_be_created_is_a_postgres_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.delenv("TENANTCTL_DATABASE_URL", raising=False)
    monkeypatch.setenv("TENANTCTL_DATA_DIR", str(tmp_path / "a-file" / "data"))
    with pytest.raises(PostgresError) as caught:
        database.database_url()
    assert caught.value.exit_code == 5
    assert f"cannot create the data directory {tmp_path / 'a-file' / 'data'}" in str(caught.value)
    assert "TENANTCTL_DATA_DIR" in caught.value.message
