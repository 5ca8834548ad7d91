"""`pg_dump -Fc` of a tenant's schema or database, and `pg_restore --list` of a dump.

Runs the embedded server's own binaries (pgserver ships Postgres 16; a pg_dump older
than the server refuses to dump it), else the ones on PATH. The connection comes from
the libpq environment built from the server's admin URL (`postgres.libpq_env`), so no
password is ever on a command line. A dump is held in memory: exports are of one
tenant, taken while it is being deleted, not a bulk backup tool.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from psycopg import conninfo

from controlplane.drivers import postgres
from controlplane.errors import PostgresError

__all__ = ["Dumps", "binary"]

_TIMEOUT = 3600.0


def binary(name: str) -> str:
    """Path of `pg_dump`/`pg_restore`: pgserver's (when installed), else the one on PATH."""
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "pginstall" / "bin" / name
        if bundled.is_file():
            return str(bundled)
    found = shutil.which(name)
    if found is None:
        msg = f"{name} not found: install the Postgres client tools (or pgserver)"
        raise PostgresError(msg)
    return found


@dataclass(frozen=True)
class Dumps:
    """Dumps tenants' data as the server's admin (`servers` maps target -> admin URL)."""

    servers: Mapping[str, str]

    def dump(self, target: str, expected: Mapping[str, str]) -> bytes:
        """`pg_dump -Fc` of the tenant's database (`database` given) or schema."""
        admin = self.servers[target]
        if "database" in expected:
            url, scope = conninfo.make_conninfo(admin, dbname=expected["database"]), []
        else:
            url, scope = admin, ["--schema", expected["schema"]]
        what = f"pg_dump of {expected.get('database') or expected['schema']}"
        return _run([binary("pg_dump"), "--format=custom", "--no-password", *scope], url, what)

    def contents(self, dump: bytes) -> list[str]:
        """The archive's table of contents (`pg_restore --list`); PostgresError if unreadable."""
        with tempfile.TemporaryDirectory(prefix="tenantctl-export-") as folder:
            path = Path(folder) / "data.dump"
            path.write_bytes(dump)
            listed = _run([binary("pg_restore"), "--list", str(path)], "", "pg_restore --list")
        return [line for line in listed.decode().splitlines() if line and not line.startswith(";")]


def _run(args: list[str], url: str, what: str) -> bytes:
    env = {**os.environ, **(postgres.libpq_env(url) if url else {})}
    try:
        done = subprocess.run(  # noqa: S603 - fixed binaries, arguments built here
            args, env=env, capture_output=True, timeout=_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        msg = f"{what}: {exc}"
        raise PostgresError(msg, retryable=True) from exc
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        msg = f"{what} failed: {reason[-1] if reason else f'exit {done.returncode}'}"
        # A refused or lost connection is an outage; anything else is permanent.
        retryable = "connection" in msg.lower() and "refused" in msg.lower()
        raise PostgresError(msg, retryable=retryable)
    return done.stdout
