"""A tenant's own data on Postgres: the initial import, its login switch, what it can see.

Kept beside `postgres.TenantDatabases` (whose connection details and derived passwords it
reuses) so that the isolation checks stay one small driver and this one is additive.

The import is exactly-once per file although the step runs at least once: each file is
loaded in one transaction that also writes its row in the tenant's import log
(`<schema>.tenantctl_imports`: file, checksum, rows). A crash inside the transaction
leaves nothing (Postgres rolls it back); after the commit, the log says the file is in.
So a re-run after a crash at any point neither duplicates nor loses a row.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from controlplane.drivers import postgres
from controlplane.errors import ConflictError, PostgresError
from controlplane.models.imports import ImportBatch, ImportRecord

__all__ = ["IMPORT_FAULT_ENV", "IMPORT_LOG", "TenantData", "failed"]

IMPORT_LOG = "tenantctl_imports"
# Crash-test failpoint: `TENANTCTL_FAULT_KILL_IN_IMPORT=orders.csv` SIGKILLs the process
# after that file's rows are inserted but before its transaction commits; `orders.csv+`
# right after the commit. Harmless when unset.
IMPORT_FAULT_ENV = "TENANTCTL_FAULT_KILL_IN_IMPORT"
_CONNECT_TIMEOUT = 10
# SQLSTATE classes of a failing server (as in `postgres`): connection, resources, operator.
_OUTAGE_CLASSES = frozenset({"08", "53", "57", "58"})
_LOG_DDL = """
CREATE TABLE IF NOT EXISTS {log} (
    file text PRIMARY KEY,
    table_name text NOT NULL,
    checksum text NOT NULL,
    rows bigint NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now()
)
"""
_TENANT_TABLES = """
SELECT c.relname::text FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY 1
"""


def _failpoint(file: str, moment: str) -> None:
    if os.environ.get(IMPORT_FAULT_ENV) == file + moment:
        os.kill(os.getpid(), signal.SIGKILL)


def failed(what: str, exc: psycopg.Error) -> PostgresError:
    """A psycopg error as PostgresError: retryable when the server, not the data, failed."""
    outage = isinstance(exc, psycopg.OperationalError) and not exc.sqlstate
    outage = outage or bool(exc.sqlstate and exc.sqlstate[:2] in _OUTAGE_CLASSES)
    return PostgresError(f"{what}: {str(exc).strip()}", retryable=outage)


@dataclass(frozen=True)
class TenantData:
    """The tenant's database as its app role (import, visibility) and as the admin (login)."""

    databases: postgres.TenantDatabases

    @contextlib.contextmanager
    def _as_app(
        self, tenant_id: str, target: str, expected: Mapping[str, str], what: str
    ) -> Iterator[psycopg.Connection]:
        """A session as the tenant's app role; psycopg errors become PostgresError."""
        url = self.databases.connect_url(target, expected)
        password = self.databases.passwords.password(tenant_id)
        try:
            with psycopg.connect(url, password=password, connect_timeout=_CONNECT_TIMEOUT) as conn:
                yield conn
        except psycopg.Error as exc:
            raise self._translated(target, f"tenant '{tenant_id}': {what}", exc) from exc

    def _translated(self, target: str, what: str, exc: psycopg.Error) -> PostgresError:
        """Retryable only when the server failed: a login refused while the admin can
        connect is the tenant's setup (its role or database not there yet), not an outage."""
        if exc.sqlstate:
            return failed(what, exc)
        try:
            with psycopg.connect(self.databases.servers[target], connect_timeout=_CONNECT_TIMEOUT):
                pass
        except psycopg.Error:
            return PostgresError(f"{what}: {str(exc).strip()}", retryable=True)
        return PostgresError(f"{what}: {str(exc).strip()}")

    def load(
        self, tenant_id: str, target: str, expected: Mapping[str, str], batch: ImportBatch
    ) -> ImportRecord:
        """Load one file unless its log row says it is in; ConflictError if it changed."""
        with self._as_app(tenant_id, target, expected, f"import of {batch.file}") as conn:
            record = _load(conn, expected["schema"], batch)
        _failpoint(batch.file, "+")
        return record

    def imported(
        self, tenant_id: str, target: str, expected: Mapping[str, str]
    ) -> dict[str, ImportRecord]:
        """The import log by file (empty before the first import)."""
        schema = expected["schema"]
        log = sql.Identifier(schema, IMPORT_LOG)
        query = sql.SQL("SELECT file, table_name, checksum, rows FROM {}").format(log)
        with self._as_app(tenant_id, target, expected, "read the import log") as conn:
            if not _exists(conn, schema, IMPORT_LOG):
                return {}
            rows = conn.execute(query).fetchall()
        return {r[0]: ImportRecord(r[0], r[1], r[2], int(r[3])) for r in rows}

    def row_counts(
        self, tenant_id: str, target: str, expected: Mapping[str, str], tables: Sequence[str]
    ) -> dict[str, int]:
        """Rows the app role sees in each of `tables` (a missing table counts -1)."""
        schema = expected["schema"]
        counts: dict[str, int] = {}
        with self._as_app(tenant_id, target, expected, "count imported rows") as conn:
            for table in tables:
                counts[table] = _count(conn, schema, table) if _exists(conn, schema, table) else -1
        return counts

    def foreign_rows(self, tenant_id: str, target: str, expected: Mapping[str, str]) -> list[str]:
        """Problems: the app role cannot log in, or sees rows of another tenant."""
        schema = expected["schema"]
        problems = []
        try:
            with self._as_app(tenant_id, target, expected, "row visibility check") as conn:
                for (table,) in conn.execute(_TENANT_TABLES, (schema,)).fetchall():
                    query = sql.SQL(
                        "SELECT count(*) FROM {} WHERE tenant_id::text IS DISTINCT FROM %s"
                    ).format(sql.Identifier(schema, table))
                    row = conn.execute(query, (tenant_id,)).fetchone()
                    if row and row[0]:
                        problems.append(
                            f"{schema}.{table}: {row[0]} row(s) of other tenants visible"
                        )
        except PostgresError as exc:
            if exc.retryable:
                raise
            return [f"as {expected['app_role']}: {exc.message}"]
        return problems

    def set_login(self, target: str, app_role: str, *, login: bool) -> None:
        """ALTER ROLE ... LOGIN / NOLOGIN; NOLOGIN also ends the role's open sessions."""
        statement = "ALTER ROLE {} LOGIN" if login else "ALTER ROLE {} NOLOGIN"
        try:
            with psycopg.connect(
                self.databases.servers[target], autocommit=True, connect_timeout=_CONNECT_TIMEOUT
            ) as conn:
                conn.execute(sql.SQL(statement).format(sql.Identifier(app_role)))
                if not login:
                    conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                        (app_role,),
                    )
        except psycopg.Error as exc:
            msg = f"role {app_role}: set {'LOGIN' if login else 'NOLOGIN'}"
            raise failed(msg, exc) from exc

    def can_login(self, target: str, app_role: str) -> bool | None:
        """Whether the role may log in (None when it does not exist)."""
        try:
            with psycopg.connect(
                self.databases.servers[target], connect_timeout=_CONNECT_TIMEOUT
            ) as conn:
                row = conn.execute(
                    "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (app_role,)
                ).fetchone()
        except psycopg.Error as exc:
            msg = f"role {app_role}: read"
            raise failed(msg, exc) from exc
        return None if row is None else bool(row[0])


def _exists(conn: psycopg.Connection, schema: str, table: str) -> bool:
    found = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()
    return bool(found and found[0])


def _count(conn: psycopg.Connection, schema: str, table: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def _load(conn: psycopg.Connection, schema: str, batch: ImportBatch) -> ImportRecord:
    """One transaction: log check, table, COPY, log row."""
    log = sql.Identifier(schema, IMPORT_LOG)
    with conn.transaction():
        conn.execute(sql.SQL(_LOG_DDL).format(log=log))
        seen = conn.execute(
            sql.SQL("SELECT checksum, rows, table_name FROM {} WHERE file = %s FOR UPDATE").format(
                log
            ),
            (batch.file,),
        ).fetchone()
        if seen is not None:
            return _already(batch, seen)
        copied = _copy(conn, schema, batch)
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (file, table_name, checksum, rows) VALUES (%s, %s, %s, %s)"
            ).format(log),
            (batch.file, batch.table, batch.checksum, copied),
        )
        _failpoint(batch.file, "")
    return ImportRecord(batch.file, batch.table, batch.checksum, copied)


def _already(batch: ImportBatch, seen: tuple[object, ...]) -> ImportRecord:
    checksum, rows, table = str(seen[0]), int(str(seen[1])), str(seen[2])
    if checksum != batch.checksum:
        msg = (
            f"{batch.file} changed since it was imported (sha256 {checksum[:12]}… then, "
            f"{batch.checksum[:12]}… now): the initial import loads a file once — put new "
            "rows in a new file, or load changes through the application"
        )
        raise ConflictError(msg)
    return ImportRecord(batch.file, table, checksum, rows)


def _copy(conn: psycopg.Connection, schema: str, batch: ImportBatch) -> int:
    table = sql.Identifier(schema, batch.table)
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in batch.columns)
    definitions = sql.SQL(", ").join(
        sql.SQL("{} text").format(sql.Identifier(c)) for c in batch.columns
    )
    conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(table, definitions))
    # COPY is refused on tables with row-level security: batched INSERTs (one pipeline).
    placeholders = sql.SQL(", ").join(sql.Placeholder() * len(batch.columns))
    insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(table, columns, placeholders)
    with conn.cursor() as cursor:
        cursor.executemany(insert, batch.rows)
        copied = cursor.rowcount
    if copied != len(batch.rows):
        msg = f"{batch.file}: {copied} row(s) inserted, {len(batch.rows)} in the file"
        raise PostgresError(msg)
    return copied
