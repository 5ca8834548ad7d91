"""Fault test: SIGKILL the whole `tenantctl apply` process group at random moments.

A new user's first `apply` starts the embedded Postgres (the first kill lands inside its
first start); then 19 more kills land after a random number of progress lines. Plain
`apply` is re-run until it exits 0, and the bookkeeping must hold: every tenant active,
its newest operation succeeded, nothing left running or pending, every applied step audited
exactly once, no audit entry from a fenced-out holder, and no orphaned Postgres roles,
schemas or databases, terraform workspaces or render files.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pgserver
import psycopg
import pytest

from controlplane.state import database
from controlplane.state.store import Store
from tests.bookkeeping import check_books

TENANTCTL = [sys.executable, "-m", "tenantctl.main"]
TENANTS = 25
KILLS = 20
PLATFORM = """\
platform:
  base_domain: tenants.example.com
  regions: [us-east-1, eu-west-1]
  clusters:
    shared: {context: ""}
"""


def _write_tenants(folder: Path) -> list[str]:
    folder.mkdir()
    (folder / "platform.yaml").write_text(PLATFORM)
    ids = []
    for i in range(TENANTS):
        tenant_id = f"fault-{i:02d}"
        tier = "enterprise" if i % 8 == 0 else "standard"  # a few dedicated databases
        (folder / f"{tenant_id}.yaml").write_text(
            f"tenant:\n  id: {tenant_id}\n  name: Fault {i}\n  tier: {tier}\n  region: us-east-1\n"
        )
        ids.append(tenant_id)
    return ids


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh data dir and no TENANTCTL_DATABASE_URL: the embedded default, from scratch."""
    env = {k: v for k, v in os.environ.items() if k != "TENANTCTL_DATABASE_URL"}
    env["TENANTCTL_DATA_DIR"] = str(tmp_path / "data")
    yield env
    # Stop the server the runs started: pgserver's own cleanup keeps it running while its
    # list of client pids (killed ones included, and pids since reused) looks alive.
    pid_file = tmp_path / "data" / "pgdata" / "postmaster.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)  # fast shutdown


def _apply(env: dict[str, str], configs: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*TENANTCTL, "apply", "-f", str(configs), "--yes", "--out", str(out), "--parallel", "4"],
        env=env,
        cwd=out.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: terraform and psql die with it
    )


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.stderr is not None
    proc.stderr.close()


def _kill_during_first_start(env: dict[str, str], configs: Path, out: Path) -> None:
    """Kill as soon as initdb has begun writing the data dir (no fixed sleep)."""
    proc = _apply(env, configs, out)
    data = Path(env["TENANTCTL_DATA_DIR"])
    while proc.poll() is None and not any(data.glob("pgdata*/base")):
        pass  # initdb creates base/ early: kill inside the bootstrap
    _kill_group(proc)


def _kill_after_lines(env: dict[str, str], configs: Path, out: Path, lines: int) -> bool:
    """Kill after `lines` progress lines; False when the run finished first."""
    proc = _apply(env, configs, out)
    assert proc.stderr is not None
    for _ in range(lines):
        if not proc.stderr.readline():
            break
    finished = proc.poll() is not None
    _kill_group(proc)
    return not finished


def _state(env: dict[str, str]) -> tuple[Store, str]:
    url = pgserver.get_server(Path(env["TENANTCTL_DATA_DIR"]) / "pgdata").get_uri()
    return Store(database.connect(url), actor="test"), url


@pytest.mark.slow
def test_random_kills_then_plain_apply_converges_with_clean_books(
    tmp_path: Path, embedded: dict[str, str]
) -> None:
    rng = random.Random(20261201)  # noqa: S311 - reproducible kill moments, not crypto
    configs, out = tmp_path / "tenant-configs", tmp_path / "out"
    ids = _write_tenants(configs)
    _kill_during_first_start(embedded, configs, out)
    # Each run prints a line per finished step (and terraform's progress): a kill after 1
    # to 25 lines lands mid-run while work remains, wherever that is.
    interrupted = sum(
        _kill_after_lines(embedded, configs, out, rng.randint(1, 25)) for _ in range(KILLS - 1)
    )
    for _attempt in range(5):
        rerun = subprocess.run(
            [*TENANTCTL, "apply", "-f", str(configs), "--yes", "--out", str(out), "-o", "json"],
            env=embedded,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if rerun.returncode == 0:
            break
    assert rerun.returncode == 0, rerun.stderr
    # Kills that land after a run ended prove nothing; enough must have landed mid-run
    # (how many depends on the machine's speed, so the bound is loose).
    assert interrupted >= 5
    data = Path(embedded["TENANTCTL_DATA_DIR"])
    assert list(data.glob("pgdata.unfinished-*"))  # the first kill did land inside initdb
    store, url = _state(embedded)
    check_books(store, ids, "active")
    _check_no_orphans(url, Path(embedded["TENANTCTL_DATA_DIR"]), out, ids)
    store.engine.dispose()


def _check_no_orphans(url: str, data: Path, out: Path, ids: list[str]) -> None:
    bases = {"tenant_" + t.replace("-", "_") for t in ids}
    with psycopg.connect(url) as conn:
        roles = {
            r
            for (r,) in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'tenant\\_%'")
        }
        dbs = {
            d
            for (d,) in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'tenant\\_%'"
            )
        }
    base, _, params = url.partition("?")
    shared = base.rsplit("/", 1)[0] + "/tenantctl_shared" + (f"?{params}" if params else "")
    query = "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\\_%'"
    with psycopg.connect(shared) as conn:
        schemas = {s for (s,) in conn.execute(query)}
    dedicated = {"tenant_" + t.replace("-", "_") for i, t in enumerate(ids) if i % 8 == 0}
    assert roles == {f"{b}_{r}" for b in bases for r in ("owner", "app")}
    assert schemas == bases - dedicated
    assert dbs == dedicated
    workspaces = data / "terraform" / "workspaces"
    assert {p.name for p in workspaces.iterdir()} == set(ids)
    for tenant in workspaces.iterdir():
        (module,) = list(tenant.iterdir())
        assert json.loads((module / "terraform.tfstate").read_text())["resources"]
        assert not list(module.glob("*.tfstate.lock*")) and not list(
            module.glob(".terraform.tfstate.lock*")
        )
    assert {p.name for p in out.iterdir()} == {*ids, "_platform"}  # platform objects too
