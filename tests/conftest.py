"""Session-wide real services for the tests: one Postgres, a fresh database per test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from controlplane.state import database

pytest_plugins = [
    "tests.fakes.cloudflare_fixtures",
    "tests.fakes.kube_fixtures",
]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "tenant-configs"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real Postgres: TENANTCTL_TEST_DATABASE_URL, or an embedded pgserver for the session."""
    configured = os.environ.get("TENANTCTL_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    import pgserver  # noqa: PLC0415

    # Not under pytest's basetemp: concurrent pytest sessions prune each other's old
    # basetemps, which would delete a running server's data directory.
    pgdata = Path(tempfile.mkdtemp(prefix="tenantctl-test-pg-"))
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    database.enable_logical_replication(server)  # tier changes replicate (docs/lifecycle.md)
    yield str(server.get_uri())
    server.cleanup()
    shutil.rmtree(pgdata, ignore_errors=True)


def _with_db(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    base = base.rsplit("/", 1)[0] + "/" + name
    return f"{base}?{query}" if query else base


@pytest.fixture
def database_url(postgres_url: str) -> Iterator[str]:
    """A new, empty database on the session server (dropped afterwards)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_db(postgres_url, name)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _default_state(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One state store and data dir for tests that do not ask for their own."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute('CREATE DATABASE "t_default"')
    return {
        "TENANTCTL_DATABASE_URL": _with_db(postgres_url, "t_default"),
        "TENANTCTL_DATA_DIR": str(tmp_path_factory.mktemp("default-data")),
    }


@pytest.fixture(autouse=True)
def _never_the_users_state(_default_state: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or migrates the state store of whoever runs the suite (the default
    data dir): a CLI call without `cli_env` lands in a shared test store instead."""
    for key, value in _default_state.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment pointing tenantctl at the per-test database and a private data dir.

    Also runs the test in `tmp_path`, so render output (`./out`) never lands in the repo.
    """
    env = {"TENANTCTL_DATABASE_URL": database_url, "TENANTCTL_DATA_DIR": str(tmp_path / "data")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return {**os.environ, **env}
