"""Moving a tenant's schema between Postgres locations online, for a tier change.

Logical replication where the source server has `wal_level=logical`: the schema's DDL is
copied with `pg_dump --schema-only | pg_restore`, then a publication `FOR TABLES IN
SCHEMA` on the source and a subscription on the target copy the rows and stream every
later change. Subscribing to a publication in the same cluster hangs when CREATE
SUBSCRIPTION creates its slot, so the slot is created first with
`pg_create_logical_replication_slot(..., 'pgoutput')` and the subscription uses it
(`create_slot = false`). The final catch-up writes a marker row on the frozen source and
waits for it on the target: replication applies commits in order, so once the marker is
there every earlier commit is too. Sequences are not replicated: `catch_up` copies them.

Without `wal_level=logical` (an external server configured so), the rows move by
`pg_dump --data-only | pg_restore` inside the write freeze instead: `method` says which.

Everything is named after the schema (`tcm_<schema>`: publication, slot, subscription)
and `stop` drops it all, including table-sync slots a killed copy left behind: a
leftover slot would retain WAL forever. Secrets: pg_dump/pg_restore get the connection
from the libpq environment, never the command line.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import conninfo, sql
from psycopg.rows import TupleRow

from controlplane.drivers import postgres, postgres_data, postgres_dump
from controlplane.errors import PostgresError
from controlplane.models.migrations import Location, TableSum

__all__ = ["LOGICAL", "MARKER", "Replication", "dump_restore"]

LOGICAL = "logical replication"
MARKER = "tenantctl_migration_marker"
_CONNECT_TIMEOUT = 10
_SYNC_TIMEOUT = 3600.0
_CATCH_UP_TIMEOUT = 120.0
# Text forms that do not depend on the session, so both sides sum the same row text.
_STABLE_SESSION = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 1",
    "SET bytea_output = 'hex'",
)
_SUM = "SELECT count(*)::text || ':' || coalesce(sum({hash}), 0)::text FROM {{}} AS t"
_BY_COLUMNS = sql.SQL(_SUM.format(hash="hash_record_extended(t, 0)"))
_BY_TEXT = sql.SQL(_SUM.format(hash="hashtextextended(t::text, 0)"))
# Every column's type has a default hash operator class (hash_record_extended needs one).
_HASHABLE = """
SELECT NOT EXISTS (
    SELECT 1 FROM pg_attribute a
    WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
      AND NOT EXISTS (SELECT 1 FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
                      WHERE am.amname = 'hash' AND oc.opcdefault AND oc.opcintype = a.atttypid)
)
"""
_TABLES = """
SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relname <> %s ORDER BY 1
"""
# Tables without a primary key (or another replica identity) cannot publish UPDATE/DELETE:
# the source would refuse the tenant's writes during the copy. FULL identifies by row.
_NO_IDENTITY = """
SELECT format('ALTER TABLE %%I.%%I REPLICA IDENTITY FULL', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind = 'r' AND c.relreplident = 'd'
  AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
"""
# The app role's write privileges come back as terraform and Postgres grant them: I/U/D on
# every table, and TRUNCATE too on the tables it owns.
_OWNED_BY_APP = """
SELECT format('GRANT TRUNCATE ON %%I.%%I TO %%I', n.nspname, c.relname, %s::text)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND pg_get_userbyid(c.relowner) = %s
"""
_UNWRITABLE = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relname <> %s
  AND NOT has_table_privilege(%s, c.oid, 'INSERT')
"""
_READ_ONLY_SETTING = """
SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
WHERE d.datname = current_database() AND s.setrole = to_regrole(%s)
  AND 'default_transaction_read_only=on' = ANY (s.setconfig)
"""


def dump_restore(
    source_url: str, target_url: str, dump: Sequence[str], *, drop: Sequence[str] = ()
) -> None:
    """`pg_dump -Fc DUMP` of `source_url` restored into `target_url` in one transaction.

    A schema-only dump restores with `--clean --if-exists` (a killed restore runs again);
    `drop` are patterns of `pg_restore --list` entries (`DESC SCHEMA NAME OWNER`) left out.
    """
    with tempfile.TemporaryDirectory(prefix="tenantctl-dump-") as folder:
        archive = Path(folder) / "archive.dump"
        _tool("pg_dump", source_url, "--format=custom", f"--file={archive}", *dump)
        restore = ["--single-transaction", "--exit-on-error"]
        restore += ["--data-only"] if "--data-only" in dump else ["--clean", "--if-exists"]
        if drop:
            listing = _tool("pg_restore", None, "--list", str(archive)).splitlines()
            kept = [line for line in listing if not _dropped(line, drop)]
            (Path(folder) / "list").write_text("\n".join(kept) + "\n")
            restore.append(f"--use-list={Path(folder) / 'list'}")
        _tool("pg_restore", target_url, *restore, str(archive))


def _dropped(line: str, drop: Sequence[str]) -> bool:
    """Whether a `pg_restore --list` line (`ID; OID OID DESC SCHEMA NAME OWNER`) is dropped."""
    if line.startswith(";"):
        return False
    entry = " ".join(line.split()[3:])
    return any(re.fullmatch(pattern, entry) for pattern in drop)


def _tool(name: str, url: str | None, *args: str) -> str:
    """Run a Postgres client tool with the connection in the libpq environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if url is not None:
        env.update(postgres.libpq_env(url))
        args = (*args, f"--dbname={env.pop('PGDATABASE', 'postgres')}")
    try:
        done = subprocess.run(  # noqa: S603 - fixed tool, arguments built here
            [postgres_dump.binary(name), *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        msg = f"cannot run {name}: {exc} — install the Postgres client tools"
        raise PostgresError(msg) from exc
    if done.returncode != 0:
        msg = f"{name} failed: {done.stderr.strip()[-2000:]}"
        raise PostgresError(msg)
    return done.stdout


@dataclass(frozen=True)
class Replication:
    """A tenant's schema moved between the servers of `databases` (as their admin)."""

    databases: postgres.TenantDatabases

    # -- where ----------------------------------------------------------------------

    def url(self, where: Location) -> str:
        """Admin connection string of a location's database."""
        admin = self.databases.servers[where.target]
        return conninfo.make_conninfo(admin, dbname=where.database) if where.database else admin

    def _database(self, where: Location) -> str:
        return where.database or str(conninfo.conninfo_to_dict(self.url(where)).get("dbname"))

    @contextlib.contextmanager
    def _admin(self, where: Location, what: str) -> Iterator[psycopg.Connection[TupleRow]]:
        try:
            with psycopg.connect(
                self.url(where), autocommit=True, connect_timeout=_CONNECT_TIMEOUT
            ) as conn:
                yield conn
        except psycopg.Error as exc:
            msg = f"{what} ({where.schema} on the {where.target} server)"
            raise postgres_data.failed(msg, exc) from exc

    @staticmethod
    def names(where: Location) -> str:
        """Publication, slot and subscription name of a migration out of `where`."""
        return f"tcm_{where.schema}"

    # -- what -------------------------------------------------------------------------

    def method(self, source: Location) -> str:
        """`logical replication`, or why the rows move by dump/restore instead."""
        with self._admin(source, "read wal_level") as conn:
            row = conn.execute("SHOW wal_level").fetchone()
        level = str(row[0]) if row else "unknown"
        if level == "logical":
            return LOGICAL
        return f"dump/restore inside the write freeze (wal_level={level} on {source.target})"

    def exists(self, where: Location) -> bool:
        """Whether the location's schema (and its own database) exists."""
        if where.database:
            admin = Location(where.target, where.schema, where.app_role)
            with self._admin(admin, "look for the database") as conn:
                found = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (where.database,)
                ).fetchone()
            if not found:
                return False
        with self._admin(where, "look for the schema") as conn:
            return bool(
                conn.execute("SELECT to_regnamespace(%s)", (where.schema,)).fetchone() != (None,)
            )

    def tables(self, where: Location) -> dict[str, int]:
        """Rows per table of the location (empty when it does not exist)."""
        if not self.exists(where):
            return {}
        with self._admin(where, "count rows") as conn:
            return {
                table: int(str(_one(conn, sql.SQL("SELECT count(*) FROM {}"), where.schema, table)))
                for table in _table_names(conn, where.schema)
            }

    def checksums(self, where: Location) -> dict[str, TableSum]:
        """Rows and an order-independent checksum per table: the sum of a 64-bit hash of
        each row (its columns' own hash functions, as hash partitioning uses them, where
        every column type has one: no text conversion; else of the row's text)."""
        if not self.exists(where):
            return {}
        with self._admin(where, "checksum tables") as conn:
            for statement in _STABLE_SESSION:
                conn.execute(statement)
            found = {}
            for table in _table_names(conn, where.schema):
                relation = sql.Identifier(where.schema, table)
                hashable = conn.execute(_HASHABLE, (relation.as_string(conn),)).fetchone()
                query = _BY_COLUMNS if hashable and hashable[0] else _BY_TEXT
                rows, _, total = str(_one(conn, query, where.schema, table)).partition(":")
                found[table] = TableSum(int(rows), total)
        return found

    # -- writes -----------------------------------------------------------------------

    def set_writes(self, where: Location, *, allowed: bool) -> None:
        """Freeze (revoke the app role's writes, default read-only, end its sessions) or thaw."""
        role, schema = sql.Identifier(where.app_role), sql.Identifier(where.schema)
        database = sql.Identifier(self._database(where))
        with self._admin(where, "freeze writes" if not allowed else "resume writes") as conn:
            if allowed:
                conn.execute(
                    sql.SQL(
                        "ALTER ROLE {} IN DATABASE {} RESET default_transaction_read_only"
                    ).format(role, database)
                )
                conn.execute(
                    sql.SQL("GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(
                        schema, role
                    )
                )
                grants = conn.execute(
                    _OWNED_BY_APP, (where.app_role, where.schema, where.app_role)
                ).fetchall()
                for (grant,) in grants:
                    conn.execute(grant)
                return
            conn.execute(
                sql.SQL(
                    "ALTER ROLE {} IN DATABASE {} SET default_transaction_read_only = on"
                ).format(role, database)
            )
            conn.execute(
                sql.SQL(
                    "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {} FROM {}"
                ).format(schema, role)
            )
            # Waits (up to 5 s each) until the session is gone: its commits are all in.
            conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE usename = %s AND datname = current_database() AND pid <> pg_backend_pid()",
                (where.app_role,),
            )

    def writes_allowed(self, where: Location) -> bool:
        """Whether the app role may write every table of the location (none read-only)."""
        with self._admin(where, "read write privileges") as conn:
            setting = conn.execute(_READ_ONLY_SETTING, (where.app_role,)).fetchone()
            row = conn.execute(_UNWRITABLE, (where.schema, MARKER, where.app_role)).fetchone()
        return setting is None and not (row and row[0])

    def retire(self, where: Location) -> None:
        """A retired copy in its own database: the app role may no longer connect to it."""
        if not where.database:
            return
        admin = Location(where.target, where.schema, where.app_role)
        with self._admin(admin, "retire the database") as conn:
            conn.execute(
                sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM {}").format(
                    sql.Identifier(where.database), sql.Identifier(where.app_role)
                )
            )

    def drop(self, where: Location) -> None:
        """Remove a stale copy at `where` (its schema, or its own database)."""
        if where.database:
            admin = Location(where.target, where.schema, where.app_role)
            with self._admin(admin, "drop the stale database") as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(where.database)
                    )
                )
            return
        with self._admin(where, "drop the stale schema") as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(where.schema))
            )

    # -- moving -----------------------------------------------------------------------

    def start(self, source: Location, target: Location) -> dict[str, str]:
        """Copy the schema's DDL, then (logical) replicate its rows; waits for the copy.

        Safe to run again: an existing subscription is only waited for.
        """
        name = self.names(source)
        logical = self.method(source) == LOGICAL
        if logical:
            self._prepare_source(source, name)
        if not self._subscribed(target, name):
            self._copy_schema(source, target)
        if not logical:
            return {"method": self.method(source)}
        self._subscribe(source, target, name)
        self._wait_synced(target, name)
        return {"method": LOGICAL, "publication": name, "slot": name, "subscription": name}

    def catch_up(self, source: Location, target: Location) -> dict[str, str]:
        """With the source frozen: the last changes, the sequences, then `stop`."""
        name = self.names(source)
        started = time.monotonic()
        if self.method(source) != LOGICAL:
            self._copy_rows(source, target)
        elif self._subscribed(target, name):
            self._marker_round_trip(source, target)
        sequences = self._copy_sequences(source, target)
        self.stop(source, target)
        return {"sequences": str(sequences), "seconds": f"{time.monotonic() - started:.3f}"}

    def stop(self, source: Location, target: Location) -> None:
        """Drop subscription, slots, publication and marker tables (each if there)."""
        name = self.names(source)
        suboid = ""
        if self.exists(target):
            with self._admin(target, "drop the subscription") as conn:
                row = conn.execute(
                    "SELECT oid::text FROM pg_subscription WHERE subname = %s AND subdbid = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())",
                    (name,),
                ).fetchone()
                if row is not None:
                    suboid = str(row[0])
                    subscription = sql.Identifier(name)
                    conn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(subscription))
                    conn.execute(
                        sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(subscription)
                    )
                    conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(subscription))
                _drop_marker(conn, target.schema)
        self._drop_slots(source, name, suboid)
        with self._admin(source, "drop the publication") as conn:
            conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(name)))
            _drop_marker(conn, source.schema)

    def leftovers(self, source: Location, target: Location) -> list[str]:
        """Replication objects of a migration out of `source` still there (for checks)."""
        name = self.names(source)
        found = []
        with self._admin(source, "look for replication objects") as conn:
            slots = conn.execute(
                "SELECT slot_name::text FROM pg_replication_slots "
                "WHERE slot_name = %s OR slot_name LIKE 'pg\\_%%\\_sync\\_%%'",
                (name,),
            ).fetchall()
            found += [f"slot {s}" for (s,) in slots]
            if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone():
                found.append(f"publication {name}")
            subs = conn.execute(
                "SELECT subname::text FROM pg_subscription WHERE subname = %s", (name,)
            ).fetchall()
            found += [f"subscription {s}" for (s,) in subs]
        del target
        return found

    def _prepare_source(self, source: Location, name: str) -> None:
        with self._admin(source, "publish the schema") as conn:
            schema = sql.Identifier(source.schema)
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (id int PRIMARY KEY, token text NOT NULL)"
                ).format(sql.Identifier(source.schema, MARKER))
            )
            for (statement,) in conn.execute(_NO_IDENTITY, (source.schema,)).fetchall():
                conn.execute(statement)
            if not conn.execute(
                "SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)
            ).fetchone():
                conn.execute(
                    sql.SQL("CREATE PUBLICATION {} FOR TABLES IN SCHEMA {}").format(
                        sql.Identifier(name), schema
                    )
                )
            if not conn.execute(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (name,)
            ).fetchone():
                conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (name,))

    def _copy_schema(self, source: Location, target: Location) -> None:
        """The schema's DDL (tables, indexes, policies, grants); the schema itself is the
        target's own (terraform made it). In a shared database the RLS event trigger makes
        the tenant policy itself, so the source's is left out there."""
        schema = re.escape(source.schema)
        drop = [f"SCHEMA - {schema} .*", f"ACL - SCHEMA {schema} .*"]
        if not target.database:
            drop.append(f"POLICY {schema} \\S+ tenant_isolation .*")
        dump = ("--schema-only", f"--schema={source.schema}", "--no-publications")
        dump_restore(self.url(source), self.url(target), dump, drop=drop)

    def _copy_rows(self, source: Location, target: Location) -> None:
        """The fallback: every row by pg_dump/pg_restore (into emptied tables)."""
        with self._admin(target, "empty the target tables") as conn:
            tables = [t for t in _table_names(conn, target.schema)]
            if tables:
                conn.execute(
                    sql.SQL("TRUNCATE {}").format(
                        sql.SQL(", ").join(sql.Identifier(target.schema, t) for t in tables)
                    )
                )
        dump = (
            "--data-only",
            f"--schema={source.schema}",
            f"--exclude-table={source.schema}.{MARKER}",
        )
        dump_restore(self.url(source), self.url(target), dump)

    def _subscribed(self, target: Location, name: str) -> bool:
        if not self.exists(target):
            return False
        with self._admin(target, "look for the subscription") as conn:
            return bool(
                conn.execute("SELECT 1 FROM pg_subscription WHERE subname = %s", (name,)).fetchone()
            )

    def _subscribe(self, source: Location, target: Location, name: str) -> None:
        if self._subscribed(target, name):
            return
        options = ["create_slot = false", "slot_name = {slot}", "copy_data = true"]
        with self._admin(target, "subscribe") as conn:
            version = int(str(_scalar(conn, "SHOW server_version_num")))
            if version >= 160000:  # apply as the admin: the tables may force RLS
                options.append("run_as_owner = true")
            statement = sql.SQL(
                "CREATE SUBSCRIPTION {name} CONNECTION {url} PUBLICATION {name} WITH ("
                + ", ".join(options)
                + ")"
            ).format(
                name=sql.Identifier(name), url=sql.Literal(self.url(source)), slot=sql.Literal(name)
            )
            conn.execute(statement)

    def _wait_synced(self, target: Location, name: str) -> None:
        deadline = time.monotonic() + _SYNC_TIMEOUT
        query = (
            "SELECT count(*) FILTER (WHERE r.srsubstate <> 'r'), count(*) FROM pg_subscription s "
            "LEFT JOIN pg_subscription_rel r ON r.srsubid = s.oid WHERE s.subname = %s"
        )
        with self._admin(target, "wait for the initial copy") as conn:
            while True:
                row = conn.execute(query, (name,)).fetchone()
                pending, total = (int(row[0]), int(row[1])) if row else (1, 0)
                if total and not pending:
                    return
                if time.monotonic() > deadline:
                    msg = (
                        f"initial copy of {target.schema} not finished after {_SYNC_TIMEOUT:.0f} s"
                    )
                    raise PostgresError(msg, retryable=True)
                time.sleep(0.05)

    def _marker_round_trip(self, source: Location, target: Location) -> None:
        token = os.urandom(8).hex()
        marker = sql.Identifier(source.schema, MARKER)
        with self._admin(source, "write the catch-up marker") as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (id, token) VALUES (1, %s) "
                    "ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token"
                ).format(marker),
                (token,),
            )
        deadline = time.monotonic() + _CATCH_UP_TIMEOUT
        query = sql.SQL("SELECT token FROM {} WHERE id = 1").format(
            sql.Identifier(target.schema, MARKER)
        )
        with self._admin(target, "wait for the catch-up marker") as conn:
            while conn.execute(query).fetchone() != (token,):
                if time.monotonic() > deadline:
                    waited = f"{_CATCH_UP_TIMEOUT:.0f} s"
                    msg = f"{target.schema}: replication did not catch up in {waited}"
                    raise PostgresError(msg, retryable=True)
                time.sleep(0.005)

    def _copy_sequences(self, source: Location, target: Location) -> int:
        with self._admin(source, "read sequences") as conn:
            values = conn.execute(
                "SELECT sequencename::text, last_value FROM pg_sequences "
                "WHERE schemaname = %s AND last_value IS NOT NULL",
                (source.schema,),
            ).fetchall()
        with self._admin(target, "set sequences") as conn:
            for sequence, value in values:
                conn.execute(
                    "SELECT setval(%s::regclass, %s, true)",
                    (sql.Identifier(target.schema, sequence).as_string(conn), value),
                )
        return len(values)

    def _drop_slots(self, source: Location, name: str, suboid: str) -> None:
        """Drop the migration's slot and any table-sync slot of its subscription."""
        pattern = f"pg\\_{suboid}\\_sync\\_%" if suboid else ""
        query = (
            "SELECT slot_name::text, active_pid FROM pg_replication_slots "
            "WHERE slot_name = %s OR slot_name LIKE %s"
        )
        deadline = time.monotonic() + 30
        with self._admin(source, "drop replication slots") as conn:
            while True:
                slots = conn.execute(query, (name, pattern or name)).fetchall()
                if not slots:
                    return
                for slot, pid in slots:
                    if pid is not None:  # its walsender is still exiting
                        conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
                        continue
                    with contextlib.suppress(psycopg.errors.ObjectInUse):
                        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                if time.monotonic() > deadline:
                    msg = f"replication slot {name} stays active: drop it by hand"
                    raise PostgresError(msg, retryable=True)
                time.sleep(0.02)


def _table_names(conn: psycopg.Connection[TupleRow], schema: str) -> list[str]:
    return [str(t) for (t,) in conn.execute(_TABLES, (schema, MARKER)).fetchall()]


def _one(conn: psycopg.Connection[TupleRow], query: sql.SQL, schema: str, table: str) -> object:
    row = conn.execute(query.format(sql.Identifier(schema, table))).fetchone()
    return row[0] if row else None


def _scalar(conn: psycopg.Connection[TupleRow], query: str) -> object:
    row = conn.execute(query).fetchone()
    return row[0] if row else None


def _drop_marker(conn: psycopg.Connection[TupleRow], schema: str) -> None:
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, MARKER)))
