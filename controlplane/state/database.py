"""Where the state lives: an external Postgres, or an embedded one started on demand.

`TENANTCTL_DATABASE_URL` selects an external server. Without it, a pgserver Postgres
runs under the user's data directory (`TENANTCTL_DATA_DIR`, default
`~/.local/share/tenantctl`), so a new machine needs no setup at all.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from controlplane.errors import ControlPlaneError, PostgresError

__all__ = ["connect", "data_dir", "database_url", "migrate"]

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 7_311_001  # pg_advisory_lock key: one migrator at a time


def data_dir() -> Path:
    """Directory for embedded state (Postgres data, Terraform work dirs)."""
    configured = os.environ.get("TENANTCTL_DATA_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tenantctl"


def database_url() -> str:
    """The SQLAlchemy URL of the state store, starting the embedded server if needed."""
    url = os.environ.get("TENANTCTL_DATABASE_URL")
    if not url:
        url = _embedded_url()
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def _embedded_url() -> str:
    import warnings  # noqa: PLC0415

    # pgserver asks platformdirs for a runtime dir and warns when XDG_RUNTIME_DIR is unset.
    warnings.filterwarnings("ignore", module="platformdirs")
    import pgserver  # noqa: PLC0415 - only the embedded default needs it (and it is slow to import)

    pgdata = data_dir() / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None)  # type: ignore[attr-defined]
    except Exception as exc:  # pgserver raises bare Exceptions with initdb/pg_ctl output
        msg = (
            f"cannot start the embedded Postgres in {pgdata}: {exc}. "
            "Set TENANTCTL_DATABASE_URL to use an external server."
        )
        raise ControlPlaneError(msg) from exc
    return str(server.get_uri())


def connect(url: str | None = None) -> sa.Engine:
    """Create an engine for the state store and bring its schema to the newest revision.

    Raises:
        PostgresError: the server cannot be reached (the URL is shown without password).
    """
    engine = sa.create_engine(url or database_url(), pool_pre_ping=True, pool_size=8)
    try:
        migrate(engine)
    except sa.exc.OperationalError as exc:
        shown = engine.url.render_as_string(hide_password=True)
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
        msg = f"cannot reach the state store at {shown}: {reason} — check TENANTCTL_DATABASE_URL"
        raise PostgresError(msg, retryable=True) from exc
    return engine


def migrate(engine: sa.Engine) -> None:
    """Apply pending Alembic migrations; concurrent callers serialise on an advisory lock."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.begin() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        config.attributes["connection"] = conn
        log.info("migrating state store to %s", head)
        command.upgrade(config, "head")
