"""Where the state lives: an external Postgres, or an embedded one started on demand.

`TENANTCTL_DATABASE_URL` selects an external server. Without it, a pgserver Postgres
runs under the user's data directory (`TENANTCTL_DATA_DIR`, default
`~/.local/share/tenantctl`), so a new machine needs no setup at all.

The embedded start must survive being killed at any point. pgserver decides "initialised"
by `PG_VERSION`, which initdb writes first, and trusts `postmaster.pid`, which a killed
initdb leaves holding its bootstrap backend's negative pid: a kill during the first start
used to leave a data dir no later run could start. So starts take turns on a lock file
beside `pgdata/`, a `pgdata/` that no postmaster ever ran on (initdb unfinished) is set
aside and initialised again, and a `postmaster.pid` naming no running postgres is removed.

The embedded server runs with `wal_level=logical`: a tier change copies a tenant's schema
online by logical replication (docs/lifecycle.md). A data dir initialised without it gets
it by `ALTER SYSTEM` and one restart, on the first start that finds it missing.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from controlplane.errors import ConfigError, ConflictError, PostgresError, SourceLocation

__all__ = [
    "START_LOCK_TIMEOUT",
    "URL_ENV",
    "connect",
    "data_dir",
    "database_url",
    "enable_logical_replication",
    "migrate",
]

log = logging.getLogger(__name__)

URL_ENV = "TENANTCTL_DATABASE_URL"
_MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision (tests/integration/test_state.py: the scripts' head).
HEAD = "0007"
_MIGRATION_LOCK = 7_311_001  # pg_advisory_lock key: one migrator at a time
_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
# initdb + the first start take seconds; a holder past this is stuck (e.g. SIGSTOPped).
START_LOCK_TIMEOUT = 120.0
# Written after the first successful start; `postmaster.opts` (written by every postmaster)
# vouches for data dirs initialised before this marker existed.
_INITIALISED = "tenantctl-initialised"


def data_dir() -> Path:
    """Directory for embedded state (Postgres data, Terraform work dirs)."""
    configured = os.environ.get("TENANTCTL_DATA_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tenantctl"


def database_url(*, start_lock_timeout: float = START_LOCK_TIMEOUT) -> str:
    """The SQLAlchemy URL of the state store, starting the embedded server if needed.

    Args:
        start_lock_timeout: seconds to wait while another process starts the embedded server.

    Raises:
        ConfigError: `TENANTCTL_DATABASE_URL` is not a Postgres URL.
        PostgresError: the data directory cannot be created or the embedded server not started.
        ConflictError: (retryable) another process kept starting the embedded server for
            `start_lock_timeout` seconds (it names that process).
    """
    return _psycopg_url(os.environ.get(URL_ENV) or _embedded_url(start_lock_timeout))


def _psycopg_url(url: str) -> str:
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        reason = "it does not start with postgresql://"
        raise _bad_url(reason)
    normal = "postgresql+psycopg://" + rest
    try:
        sa.engine.make_url(normal)
    except (sa.exc.ArgumentError, ValueError) as exc:  # the URL is never echoed: passwords
        raise _bad_url(str(exc).splitlines()[0]) from exc
    return normal


def _bad_url(reason: str) -> ConfigError:
    fix = (
        f"not a usable Postgres URL ({reason}) — set it to "
        "postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or unset it to use the embedded Postgres"
    )
    return ConfigError([(SourceLocation("environment", None, URL_ENV), fix)])


def _embedded_url(lock_timeout: float) -> str:
    root = _ensure_data_dir()
    pgdata = root / "pgdata"
    with _start_lock(root / "pgdata.lock", lock_timeout):
        _set_aside_unfinished(pgdata)
        _remove_stale_pid_file(pgdata)
        uri = _start(pgdata)
        (pgdata / _INITIALISED).touch()
    return uri


def _ensure_data_dir() -> Path:
    root = data_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / "pgdata.lock").touch()
    except OSError as exc:
        msg = (
            f"cannot create the data directory {root}: {exc.strerror or exc} — set "
            "TENANTCTL_DATA_DIR to a writable directory, or TENANTCTL_DATABASE_URL to an "
            "external Postgres"
        )
        raise PostgresError(msg) from exc
    return root


@contextmanager
def _start_lock(path: Path, timeout: float) -> Iterator[None]:
    """One embedded start at a time per data dir; the OS drops the lock of a dead holder."""
    with path.open("r+") as handle:
        deadline = time.monotonic() + timeout
        while not _try_flock(handle):
            if time.monotonic() >= deadline:
                raise _start_lock_held(path, timeout)
            time.sleep(0.05)
        handle.truncate(0)
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {_now()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _try_flock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _start_lock_held(path: Path, waited: float) -> ConflictError:
    holder = path.read_text().strip() or "another process"
    error = ConflictError(
        f"the embedded Postgres in {path.parent / 'pgdata'} is being started by {holder} "
        f"(waited {waited:.0f} s) — if that process is stuck or stopped, end it and re-run"
    )
    error.retryable = True
    return error


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _set_aside_unfinished(pgdata: Path) -> None:
    """Move a data dir whose initdb never finished out of the way (it holds no data)."""
    if not pgdata.is_dir() or not any(pgdata.iterdir()) or _initialised(pgdata):
        return
    aside = pgdata.with_name(f"pgdata.unfinished-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}")
    pgdata.rename(aside)
    log.warning("initdb never finished in %s: moved it to %s, initialising again", pgdata, aside)


def _initialised(pgdata: Path) -> bool:
    # A postmaster only ever runs on a finished initdb, and leaves postmaster.opts behind.
    return (pgdata / _INITIALISED).exists() or (pgdata / "postmaster.opts").exists()


def _remove_stale_pid_file(pgdata: Path) -> None:
    """A `postmaster.pid` naming no running postgres (killed, or initdb's negative pid)."""
    pid_file = pgdata / "postmaster.pid"
    try:
        first = pid_file.read_text().split("\n", 1)[0].strip()
    except FileNotFoundError:
        return
    pid = int(first) if first.isdigit() else 0
    if pid > 0 and _is_running_postgres(pid):
        return
    pid_file.unlink(missing_ok=True)
    log.warning("removed stale %s (pid %r is no running postgres)", pid_file, first)


def _is_running_postgres(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's: leave it to postgres to judge
    try:  # Linux: "pid (comm) state ..."; a zombie is dead, a reused pid is no postgres
        comm, _, rest = Path(f"/proc/{pid}/stat").read_text().partition(") ")
    except OSError:
        return True  # no /proc: trust that the process exists
    return comm.endswith("(postgres") and not rest.startswith(("Z", "X"))


def _start(pgdata: Path) -> str:
    import warnings  # noqa: PLC0415

    # pgserver asks platformdirs for a runtime dir and warns when XDG_RUNTIME_DIR is unset.
    warnings.filterwarnings("ignore", module="platformdirs")
    import pgserver  # noqa: PLC0415 - only the embedded default needs it (and it is slow to import)

    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None)  # type: ignore[attr-defined]
    except Exception as exc:  # pgserver raises bare Exceptions with initdb/pg_ctl output
        msg = (
            f"cannot start the embedded Postgres in {pgdata}: {exc} — see {pgdata / 'log'}; "
            f"fix the cause and re-run, or set {URL_ENV} to use an external server"
        )
        raise PostgresError(msg) from exc
    enable_logical_replication(server)
    return str(server.get_uri())


def enable_logical_replication(server: Any) -> None:
    """Make a pgserver `server` run with `wal_level=logical` (the tests' server too).

    A no-op when it does; else `ALTER SYSTEM` and a fast restart with the options it ran
    with (sessions of other processes reconnect). Killed in between, the next start
    finds wal_level still short and restarts then.
    """
    import psycopg  # noqa: PLC0415 - the state store itself talks through SQLAlchemy
    from pgserver import _commands  # noqa: PLC0415 - pgserver's own pg_ctl, as `_start` uses

    pgdata = Path(server.pgdata)
    try:
        with psycopg.connect(str(server.get_uri()), autocommit=True) as conn:
            row = conn.execute("SHOW wal_level").fetchone()
            if row is not None and row[0] == "logical":
                return
            conn.execute("ALTER SYSTEM SET wal_level = 'logical'")
        log.warning("restarting the embedded Postgres in %s with wal_level=logical", pgdata)
        restart = ["-w", "-m", "fast", "-l", str(pgdata / "log"), "restart"]
        _commands.pg_ctl(restart, pgdata=pgdata, user=server.system_user, timeout=60)  # type: ignore[attr-defined]
    except (psycopg.Error, OSError, subprocess.SubprocessError) as exc:
        msg = (
            f"cannot set wal_level=logical on the embedded Postgres in {pgdata}: {exc} — "
            f"see {pgdata / 'log'}"
        )
        raise PostgresError(msg) from exc


def connect(url: str | None = None) -> sa.Engine:
    """Create an engine for the state store and bring its schema to the newest revision.

    Raises:
        PostgresError: the server cannot be reached (the URL is shown without password),
            or its schema is newer than this tenantctl.
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
    except PostgresError:
        engine.dispose()
        raise
    return engine


def revision(conn: sa.Connection) -> str | None:
    """The state store's Alembic revision (None before the first migration)."""
    if conn.execute(sa.text("SELECT to_regclass('alembic_version')")).scalar() is None:
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: sa.Engine) -> None:
    """Apply pending Alembic migrations; concurrent callers serialise on an advisory lock.

    A store already at HEAD costs two small queries: Alembic (a third of a second to import,
    and it parses every migration) loads only when there is something to migrate.
    """
    with engine.connect() as conn:
        if revision(conn) == HEAD:
            return
    from alembic import command  # noqa: PLC0415 - only when migrating, see above
    from alembic.config import Config  # noqa: PLC0415
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    head = scripts.get_current_head()
    known = {rev.revision for rev in scripts.walk_revisions()}
    with engine.begin() as conn:
        current = revision(conn)
        if current == head:
            return
        if current is not None and current not in known:
            msg = (
                f"the state store's schema is at revision {current}, newer than this "
                f"tenantctl knows (up to {head}): a newer tenantctl migrated it — "
                "upgrade this one (or point TENANTCTL_DATABASE_URL elsewhere)"
            )
            raise PostgresError(msg)
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        config.attributes["connection"] = conn
        log.info("migrating state store to %s", head)
        command.upgrade(config, "head")
