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

Inside `TenantDatabases.snapshot()` (observe in bulk) `check()` logs in as nobody: it
answers from one catalog query per server, run as that server's admin for every tenant
app role at once (`_CATALOG_QUERY`), and reports the same findings from the catalog.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo, sql
from psycopg.rows import TupleRow

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
          AND datname <> %(schema)s
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

# Everything `_ISOLATION_QUERY` proves, for every tenant app role of a server at once, read
# as the admin in the admin URL's database (one JSON document). The privilege functions
# are the ones the per-tenant query calls, with the role as first argument; they run only
# on candidates: a role that is no superuser and a member of no role can hold a privilege
# only through an ACL entry naming it or PUBLIC (`acldefault` stands in for a NULL ACL:
# owner, and for databases PUBLIC CONNECT), and can be a member of no other role.
# `reached` is MATERIALIZED: misled by the catalog's row estimates, the planner would
# otherwise aggregate it again for every role (0.5 s instead of 0.05 s for 1,500 roles).
_CATALOG_QUERY = """
WITH apps AS (
  SELECT r.oid, r.rolname::text AS name, r.rolcanlogin, r.rolconnlimit,
         r.rolsuper OR EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid) AS broad
  FROM pg_roles r WHERE r.rolname LIKE 'tenant\\_%\\_app'
), objects AS (
  SELECT 'schema' AS kind, oid, nspname::text AS name,
         coalesce(nspacl, acldefault('n', nspowner)) AS acl
  FROM pg_namespace WHERE nspname LIKE 'tenant\\_%'
  UNION ALL
  SELECT 'database', oid, datname::text, coalesce(datacl, acldefault('d', datdba))
  FROM pg_database WHERE datname LIKE 'tenant\\_%'
), grants AS (
  SELECT o.kind, o.oid, o.name, g.grantee FROM objects o, aclexplode(o.acl) g
), candidates AS (
  SELECT a.oid AS role, g.kind, g.oid, g.name FROM apps a JOIN grants g ON g.grantee = a.oid
  UNION
  SELECT a.oid, p.kind, p.oid, p.name
  FROM (SELECT DISTINCT kind, oid, name FROM grants WHERE grantee = 0) p CROSS JOIN apps a
  UNION
  SELECT a.oid, o.kind, o.oid, o.name FROM apps a JOIN objects o ON a.broad
), reached AS MATERIALIZED (
  SELECT role,
         array_agg(name ORDER BY name) FILTER (WHERE kind = 'schema') AS schemas,
         array_agg(name ORDER BY name) FILTER (WHERE kind = 'database') AS databases
  FROM candidates
  WHERE CASE kind WHEN 'schema' THEN has_schema_privilege(role, oid, 'USAGE')
                  ELSE has_database_privilege(role, oid, 'CONNECT') END
  GROUP BY role
), tables AS (
  SELECT n.nspname::text AS schema, array_agg(c.relname::text ORDER BY 1) AS names
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
  WHERE n.nspname LIKE 'tenant\\_%' AND c.relkind IN ('r', 'p')
    AND NOT (c.relrowsecurity AND c.relforcerowsecurity
             AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))
  GROUP BY 1
)
SELECT json_build_object(
  'database', current_database(),
  'search_path', (SELECT reset_val FROM pg_settings WHERE name = 'search_path'),
  'roles', (SELECT coalesce(json_object_agg(a.name, json_build_object(
      'login', a.rolcanlogin,
      'limit', a.rolconnlimit,
      'connect_here', has_database_privilege(a.oid, current_database(), 'CONNECT'),
      'public_create', coalesce(has_schema_privilege(
          a.oid, (SELECT oid FROM pg_namespace WHERE nspname = 'public'), 'CREATE'), false),
      'schemas', coalesce(x.schemas, '{}'),
      'databases', coalesce(x.databases, '{}'),
      'roles', ARRAY(SELECT t.rolname::text FROM pg_roles t
                     WHERE a.broad AND t.rolname LIKE 'tenant\\_%' AND t.oid <> a.oid
                       AND pg_has_role(a.oid, t.oid, 'MEMBER') ORDER BY 1))), '{}')
    FROM apps a LEFT JOIN reached x ON x.role = a.oid),
  'schemas', ARRAY(SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tenant\\_%'),
  'databases', (SELECT json_object_agg(datname, datallowconn) FROM pg_database),
  'unprotected', (SELECT coalesce(json_object_agg(schema, names), '{}') FROM tables),
  'settings', (SELECT coalesce(json_agg(json_build_array(d.datname, r.rolname, substr(c, 13))),
                               '[]')
               FROM pg_db_role_setting s
               LEFT JOIN pg_database d ON d.oid = s.setdatabase
               LEFT JOIN pg_roles r ON r.oid = s.setrole
               CROSS JOIN unnest(s.setconfig) c WHERE c LIKE 'search\\_path=%')
)
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
        # A GRANT to a tenant role on the same database at once (another process's
        # terraform) makes the REVOKE fail with "tuple concurrently updated": try again.
        retryable = isinstance(exc, psycopg.OperationalError) or "concurrently updated" in str(exc)
        raise PostgresError(msg, retryable=retryable) from exc
    return conninfo.make_conninfo(admin_url, dbname=name)


class _Tally:
    """A counter threads may share (connections opened, for observability)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


@dataclass(frozen=True)
class TenantDatabases:
    """Connects as tenants' app roles on the configured servers to prove isolation.

    `servers` maps a target name (as in the database step: `shared`, `dedicated`) to an
    admin connection URL; only its host, port and options are reused.
    """

    servers: Mapping[str, str]
    passwords: DerivedPasswords
    _local: threading.local = field(default_factory=threading.local, repr=False, compare=False)
    _opened: _Tally = field(default_factory=_Tally, repr=False, compare=False)

    @property
    def connections(self) -> int:
        """Server connections this checker has opened (a snapshot: one per server)."""
        return self._opened.value

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Observe in bulk: inside the block `check()` reads one catalog query per server.

        Each server is read (as its admin, for every tenant app role at once) on the first
        `check()` that needs it, then answered from memory; nobody logs in as a tenant,
        so the catalog is what is proven (see docs/database.md). The snapshot belongs to
        the calling thread: threads that apply changes keep checking live.
        """
        outer = getattr(self._local, "catalogs", None)
        self._local.catalogs = {}
        try:
            yield
        finally:
            self._local.catalogs = outer

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
        catalogs: dict[str, _Catalog | PostgresError] | None = getattr(
            self._local, "catalogs", None
        )
        if catalogs is not None:
            return _catalog_problems(self._catalog(catalogs, target), expected)
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

    def _connect(self, url: str, password: str | None = None) -> psycopg.Connection[TupleRow]:
        self._opened.add()
        return psycopg.connect(url, password=password, connect_timeout=_CONNECT_TIMEOUT)

    def _catalog(self, catalogs: dict[str, _Catalog | PostgresError], target: str) -> _Catalog:
        """The catalog of `target`'s server, read once per snapshot (targets may share one).

        A failed read is remembered too: the other tenants of a server that is down fail
        at once with the same error instead of each waiting for a connection timeout.
        """
        url = self.servers[target]
        if url not in catalogs:
            try:
                catalogs[url] = self._read_catalog(target)
            except PostgresError as exc:
                catalogs[url] = exc
                raise
        found = catalogs[url]
        if isinstance(found, PostgresError):
            raise PostgresError(found.message, retryable=found.retryable)
        return found

    def _read_catalog(self, target: str) -> _Catalog:
        try:
            with self._connect(self.servers[target]) as conn:
                document = conn.execute(_CATALOG_QUERY).fetchall()[0][0]  # always one row
        except psycopg.Error as exc:
            server = _shown(self.servers[target])
            if isinstance(exc, psycopg.OperationalError) or _is_outage(exc):
                raise _outage(target, server, exc) from exc
            msg = (
                f"cannot read the catalog of the {target} Postgres ({server}): "
                f"{str(exc).strip()} — check that its admin URL may read pg_catalog"
            )
            raise PostgresError(msg) from exc
        return _Catalog.parse(document)

    def _probe(self, tenant_id: str, target: str, expected: Mapping[str, str]) -> dict[str, object]:
        url = self.connect_url(target, expected)
        password = self.passwords.password(tenant_id)
        with self._connect(url, password) as conn:
            cursor = conn.execute(_ISOLATION_QUERY, {"schema": expected["schema"]})
            names = [column.name for column in cursor.description or ()]
            values = cursor.fetchone() or ()
            return dict(zip(names, values, strict=True))

    def _raise_if_outage(self, target: str, app_role: str, exc: psycopg.Error) -> None:
        """Raise when `exc` is the server's failure rather than the tenant's setup."""
        server = _shown(self.servers[target])
        if _is_outage(exc):
            raise _outage(target, server, exc) from exc
        if exc.sqlstate:
            return  # the server answered the tenant's session: a finding, not an outage
        try:
            with self._connect(self.servers[target]) as conn:
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


def _is_outage(exc: psycopg.Error) -> bool:
    return bool(exc.sqlstate) and str(exc.sqlstate)[:2] in _OUTAGE_CLASSES


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


@dataclass(frozen=True)
class _Role:
    """One tenant app role as `_CATALOG_QUERY` shows it."""

    login: bool
    limit: int
    connect_here: bool  # CONNECT on the admin URL's database
    public_create: bool  # CREATE on `public` of the admin URL's database
    schemas: list[str]  # tenant schemas of that database it may use, its own included
    databases: list[str]  # tenant databases it may connect to, its own included
    roles: list[str]  # other tenant roles it is a member of

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> _Role:
        return cls(**{f.name: raw[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class _Catalog:
    """One server's catalog as `_CATALOG_QUERY` read it in the admin URL's database."""

    database: str
    default_search_path: str
    roles: Mapping[str, _Role]
    schemas: frozenset[str]
    databases: Mapping[str, bool]  # every database -> whether it accepts connections
    unprotected: Mapping[str, list[str]]  # tenant schema -> tables lacking forced RLS
    search_paths: Mapping[tuple[str | None, str | None], str]  # (database, role) -> setting

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> _Catalog:
        return cls(
            database=str(raw["database"]),
            default_search_path=str(raw["search_path"]),
            roles={str(name): _Role.parse(role) for name, role in raw["roles"].items()},
            schemas=frozenset(raw["schemas"]),
            databases={str(name): bool(on) for name, on in raw["databases"].items()},
            unprotected={str(name): list(tables) for name, tables in raw["unprotected"].items()},
            search_paths={(db, role): str(value) for db, role, value in raw["settings"]},
        )

    def search_path(self, role: str, database: str) -> str:
        """What `current_setting('search_path')` shows `role` logged in to `database`."""
        # Postgres' precedence: ALTER ROLE ... IN DATABASE, ALTER ROLE, ALTER DATABASE,
        # ALTER ROLE ALL, then the server's configuration.
        for key in ((database, role), (None, role), (database, None), (None, None)):
            if key in self.search_paths:
                return self.search_paths[key]
        return self.default_search_path


def _catalog_problems(catalog: _Catalog, expected: Mapping[str, str]) -> list[str]:
    """`_problems` decided from the catalog, and why a login as the app role would fail."""
    name = expected["app_role"]
    role = catalog.roles.get(name)
    if role is None:
        return [f'cannot check as {name}: role "{name}" does not exist']
    refusal = _refusal(catalog, role, expected)
    if refusal:
        return [f"cannot check as {name}: {refusal}"]
    return _problems(_row(catalog, role, expected), expected)


def _refusal(catalog: _Catalog, role: _Role, expected: Mapping[str, str]) -> str | None:
    """Why logging in as the app role (and running the per-tenant query) would fail."""
    name, schema = expected["app_role"], expected["schema"]
    database = expected.get("database") or catalog.database
    here = database == catalog.database
    may_connect = role.connect_here if here else database in role.databases
    reasons = [
        (not role.login, f'role "{name}" is not permitted to log in'),
        (role.limit == 0, f'too many connections for role "{name}"'),
        (database not in catalog.databases, f'database "{database}" does not exist'),
        (
            not catalog.databases.get(database, True),
            f'database "{database}" is not currently accepting connections',
        ),
        (not may_connect, f'permission denied for database "{database}"'),
        (
            "database" not in expected and schema not in catalog.schemas,
            f'schema "{schema}" does not exist',
        ),
    ]
    return next((reason for failed, reason in reasons if failed), None)


def _row(catalog: _Catalog, role: _Role, expected: Mapping[str, str]) -> dict[str, object]:
    """The per-tenant query's row, as the app role would have read it."""
    name, schema = expected["app_role"], expected["schema"]
    database = expected.get("database") or catalog.database
    local: dict[str, object] = {
        "own_usage": schema in role.schemas,
        "public_create": role.public_create,
        "foreign_schemas": [other for other in role.schemas if other != schema],
        "unprotected_tables": catalog.unprotected.get(schema, []),
    }
    if "database" in expected:
        # Schemas, `public` and tables of a dedicated database live in that database's own
        # catalog, which a query on the server's admin database cannot see: the snapshot
        # proves the server-wide facts (roles, settings, CONNECT) of dedicated tenants.
        local = {
            "own_usage": True,
            "public_create": False,
            "foreign_schemas": [],
            "unprotected_tables": [],
        }
    return {
        "me": name,
        "search_path": catalog.search_path(name, database),
        "foreign_roles": role.roles,
        # Its own dedicated database (named like its schema) is not foreign: a tier change
        # copies from or to it while the tenant is on the shared one.
        "foreign_databases": [d for d in role.databases if d not in (database, schema)],
        **local,
    }
