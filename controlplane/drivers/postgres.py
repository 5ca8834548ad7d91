"""Tenant databases on Postgres: credentials without storage, and isolation checks.

Passwords are never stored anywhere: each tenant's app-role password is derived as
HMAC-SHA256(master key, purpose + tenant id), so the control plane can recompute it
when it needs it (verification, the Secret of the config step) and rotating the master
key rotates every password. Postgres only ever receives a SCRAM-SHA-256 *verifier* of
it, so neither server logs nor psql errors can reveal the password.

`TenantDatabases.check()` connects as a tenant's app role and reads, in one catalog
query, everything that proves isolation: it cannot use another tenant's schema or
database, cannot create in `public`, cannot become another tenant's role, and every
table of its own with a `tenant_id` column has row-level security enabled and forced.
A server that cannot be reached is an outage, not drift: `check()` raises a retryable
`PostgresError` then, so nobody re-applies Terraform against a server that is down.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import conninfo, sql

from controlplane.errors import ConfigError, PostgresError, SourceLocation

__all__ = [
    "DerivedPasswords",
    "TenantDatabases",
    "ensure_database",
    "libpq_env",
    "load_master_key",
    "scram_verifier",
]

MASTER_KEY_ENV = "TENANTCTL_MASTER_KEY"
_SCRAM_ITERATIONS = 4096
_CREATE_DATABASE_LOCK = 7_311_004
_LIBPQ = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}

# SQLSTATE classes that mean the server, not the tenant's setup, failed: connection
# exception, insufficient resources, operator intervention (shutdown, statement timeout),
# system error. Failures while connecting carry no SQLSTATE and are told apart by whether
# the admin can connect (`TenantDatabases._raise_if_outage`).
_OUTAGE_CLASSES = frozenset({"08", "53", "57", "58"})
_CONNECT_TIMEOUT = 10
_EXISTS = "SELECT 1 FROM pg_database WHERE datname = %s"
# Databases the admin owns (a superuser "owns" all): only their owner may change their ACL.
_OWNED = """
SELECT datname::text FROM pg_database
WHERE datname IN (%s, current_database()) AND pg_has_role(current_user, datdba, 'USAGE')
"""
_CLOSE = "REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC"
# Whether the role is busy with every connection its limit allows (not a limit set to 0).
_SATURATED = """
SELECT r.rolconnlimit > 0
       AND (SELECT count(*) FROM pg_stat_activity a WHERE a.usename = r.rolname)
           >= r.rolconnlimit
FROM pg_roles r WHERE r.rolname = %s
"""

_ISOLATION_QUERY = """
SELECT
  current_user::text AS me,
  current_setting('search_path') AS search_path,
  has_schema_privilege('public', 'CREATE') AS public_create,
  coalesce(has_schema_privilege(%(schema)s, 'USAGE'), false) AS own_usage,
  ARRAY(SELECT nspname::text FROM pg_namespace
        WHERE nspname LIKE 'tenant\\_%%' AND nspname <> %(schema)s
          AND has_schema_privilege(oid, 'USAGE') ORDER BY 1) AS foreign_schemas,
  ARRAY(SELECT rolname::text FROM pg_roles
        WHERE rolname LIKE 'tenant\\_%%' AND rolname <> current_user
          AND pg_has_role(current_user, oid, 'MEMBER') ORDER BY 1) AS foreign_roles,
  ARRAY(SELECT datname::text FROM pg_database
        WHERE datname LIKE 'tenant\\_%%' AND datname <> current_database()
          AND has_database_privilege(datname, 'CONNECT') ORDER BY 1) AS foreign_databases,
  ARRAY(SELECT c.relname::text FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
                            AND NOT a.attisdropped
        WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p')
          AND NOT (c.relrowsecurity AND c.relforcerowsecurity
                   AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))
        ORDER BY 1) AS unprotected_tables
"""


def load_master_key(data_dir: Path) -> bytes:
    """The platform master key: `TENANTCTL_MASTER_KEY`, else a 0600 file under `data_dir`."""
    configured = os.environ.get(MASTER_KEY_ENV)
    if configured:
        return configured.encode()
    path = data_dir / "master.key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_bytes().strip()


@dataclass(frozen=True)
class DerivedPasswords:
    """Per-tenant passwords computed from the master key; nothing to store or leak."""

    master_key: bytes

    def password(self, tenant_id: str, purpose: str = "db-app") -> str:
        """The password of `tenant_id` for `purpose` (43 URL-safe characters)."""
        digest = hmac.new(self.master_key, f"{purpose}:{tenant_id}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")

    def __repr__(self) -> str:
        return "DerivedPasswords(master_key=<hidden>)"


def scram_verifier(password: str, *, salt: bytes | None = None) -> str:
    """SCRAM-SHA-256 verifier in Postgres' `rolpassword` format (RFC 5803)."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def libpq_env(url: str) -> dict[str, str]:
    """PG* environment variables equivalent to a connection URL (for psql under terraform)."""
    try:
        params = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            [(SourceLocation("platform.yaml", None, "database url"), str(exc))]
        ) from exc
    return {_LIBPQ[k]: str(v) for k, v in params.items() if k in _LIBPQ and v not in (None, "")}


def ensure_database(admin_url: str, name: str) -> str:
    """Create database `name` on the server of `admin_url` if missing; returns its URL.

    Tenant roles are server-wide, so both `name` and the database `admin_url` names (the
    state store's, in the embedded default) are closed to PUBLIC: CONNECT and TEMPORARY
    are revoked where the admin owns the database. A tenant reaches only its own database.
    """
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT) as conn:
            # Concurrent creators would collide on the catalog's unique index: take turns.
            conn.execute("SELECT pg_advisory_lock(%s)", (_CREATE_DATABASE_LOCK,))
            if not conn.execute(_EXISTS, (name,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            for (owned,) in conn.execute(_OWNED, (name,)).fetchall():
                conn.execute(sql.SQL(_CLOSE).format(sql.Identifier(owned)))
    except psycopg.Error as exc:
        msg = f"cannot create database {name}: {exc}"
        raise PostgresError(msg, retryable=isinstance(exc, psycopg.OperationalError)) from exc
    return conninfo.make_conninfo(admin_url, dbname=name)


@dataclass(frozen=True)
class TenantDatabases:
    """Connects as tenants' app roles on the configured servers to prove isolation.

    `servers` maps a target name (as in the database step: `shared`, `dedicated`) to an
    admin connection URL; only its host, port and options are reused.
    """

    servers: Mapping[str, str]
    passwords: DerivedPasswords

    def check(self, tenant_id: str, target: str, expected: Mapping[str, str]) -> list[str]:
        """Problems with the tenant's database isolation (empty when healthy).

        Args:
            tenant_id: whose app role to connect as.
            target: server name in `servers`.
            expected: `app_role`, `schema` and, for a dedicated database, `database`
                (whose tables need no RLS: the whole database is the tenant's).

        Raises:
            PostgresError: (retryable) the server is down or overloaded, or the app role
                uses every connection its limit allows: nothing an apply would repair.
        """
        try:
            row = self._probe(tenant_id, target, expected)
        except psycopg.Error as exc:
            self._raise_if_outage(target, expected["app_role"], exc)
            # Not an outage: the tenant's own setup is broken (a missing role, database,
            # schema or CONNECT grant, a stale password), which the next apply repairs.
            return [f"cannot check as {expected['app_role']}: {str(exc).strip()}"]
        return _problems(row, expected)

    def connect_url(self, target: str, expected: Mapping[str, str]) -> str:
        """Connection string of the tenant's app role (without its password)."""
        admin = self.servers[target]
        database = expected.get("database") or conninfo.conninfo_to_dict(admin).get("dbname")
        return conninfo.make_conninfo(
            admin, user=expected["app_role"], password="", dbname=database
        )

    def _probe(self, tenant_id: str, target: str, expected: Mapping[str, str]) -> dict[str, object]:
        url = self.connect_url(target, expected)
        password = self.passwords.password(tenant_id)
        with psycopg.connect(url, password=password, connect_timeout=_CONNECT_TIMEOUT) as conn:
            cursor = conn.execute(_ISOLATION_QUERY, {"schema": expected["schema"]})
            names = [column.name for column in cursor.description or ()]
            values = cursor.fetchone() or ()
            return dict(zip(names, values, strict=True))

    def _raise_if_outage(self, target: str, app_role: str, exc: psycopg.Error) -> None:
        """Raise when `exc` is the server's failure rather than the tenant's setup."""
        server = _shown(self.servers[target])
        if exc.sqlstate and exc.sqlstate[:2] in _OUTAGE_CLASSES:
            raise _outage(target, server, exc) from exc
        if exc.sqlstate:
            return  # the server answered the tenant's session: a finding, not an outage
        try:
            with psycopg.connect(self.servers[target], connect_timeout=_CONNECT_TIMEOUT) as conn:
                saturated = conn.execute(_SATURATED, (app_role,)).fetchone()
        except psycopg.Error as admin_exc:
            raise _outage(target, server, admin_exc) from exc
        if saturated and saturated[0]:
            msg = (
                f"{app_role} uses every connection its limit allows on the {target} "
                f"Postgres ({server}): verify again later"
            )
            raise PostgresError(msg, retryable=True) from exc


def _shown(url: str) -> str:
    """Where a server is, for messages: host, port and database, never the password."""
    params = conninfo.conninfo_to_dict(url)
    return " ".join(f"{key}={params[key]}" for key in ("host", "port", "dbname") if params.get(key))


def _outage(target: str, server: str, exc: psycopg.Error) -> PostgresError:
    msg = (
        f"the {target} Postgres ({server}) is unavailable: {str(exc).strip()} — check that "
        "it runs and accepts connections, then try again (apply retries on its own)"
    )
    return PostgresError(msg, retryable=True)


def _problems(row: Mapping[str, object], expected: Mapping[str, str]) -> list[str]:
    schema = expected["schema"]
    checks = [
        (
            row["me"] != expected["app_role"],
            f"connected as {row['me']}, not {expected['app_role']}",
        ),
        (row["search_path"] != schema, f"search_path is {row['search_path']!r}, not {schema!r}"),
        (not row["own_usage"], f"app role cannot use its own schema {schema}"),
        (bool(row["public_create"]), "app role can create objects in schema public"),
        (bool(row["foreign_schemas"]), f"app role can use other schemas: {row['foreign_schemas']}"),
        (
            bool(row["foreign_roles"]),
            f"app role is a member of other roles: {row['foreign_roles']}",
        ),
        (
            bool(row["foreign_databases"]),
            f"app role can connect to other tenant databases: {row['foreign_databases']}",
        ),
        (
            "database" not in expected and bool(row["unprotected_tables"]),
            f"tables with tenant_id lack forced RLS or a policy: {row['unprotected_tables']}",
        ),
    ]
    return [message for failed, message in checks if failed]
