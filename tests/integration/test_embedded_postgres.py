"""The embedded Postgres starts whatever a killed run left behind (real pgserver, issue 9).

Each start runs in its own process, as `tenantctl` does: pgserver caches its server per
process, so only a fresh process shows what the next command would see.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from controlplane.errors import ConflictError
from controlplane.state import database

pytestmark = pytest.mark.slow

_START = "from controlplane.state import database; print(database.database_url())"
_SAFETY_NET = 300.0  # seconds: only ends a hung test, never measures one


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TENANTCTL_DATABASE_URL"}
    return {**env, "TENANTCTL_DATA_DIR": str(data)}


def _start(data: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _START],
        env=_env(data),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: initdb and postgres die with it
    )


def _start_and_connect(data: Path) -> None:
    """A normal start succeeds and the server answers."""
    done = subprocess.run(
        [sys.executable, "-c", _START],
        env=_env(data),
        capture_output=True,
        text=True,
        timeout=_SAFETY_NET,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip().replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def _stop(pgdata: Path) -> None:
    """`pg_ctl stop` as the user pgserver runs postgres as."""
    if not (pgdata / "postmaster.pid").exists():
        return
    from pgserver import _commands  # noqa: PLC0415

    user = "pgserver" if os.geteuid() == 0 else None
    subprocess.run(
        [str(_commands.POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "stop"],
        user=user,
        capture_output=True,
        timeout=_SAFETY_NET,
        check=False,
    )


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    """Poll the filesystem until `condition` holds (the process must still be running)."""
    while not condition():
        assert process.poll() is None, process.communicate()
        os.sched_yield()


@contextmanager
def _data_dir() -> Iterator[Path]:
    """A data dir outside pytest's basetemp: a concurrent pytest session resets that to
    0700 (and prunes it), which locks out the `pgserver` user postgres runs as under root."""
    base = Path(tempfile.mkdtemp(prefix="tenantctl-test-embedded-"))
    try:
        yield base / "data"
    finally:
        _stop(base / "data" / "pgdata")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def data() -> Iterator[Path]:
    with _data_dir() as path:
        yield path


def test_a_kill_during_initdb_leaves_a_data_dir_the_next_start_repairs(data: Path) -> None:
    pgdata = data / "pgdata"
    first = _start(data)

    # initdb writes PG_VERSION first; postmaster.opts only appears once a server runs.
    def initdb_running() -> bool:
        return (pgdata / "PG_VERSION").exists() and not (pgdata / "postmaster.opts").exists()

    _wait_for(initdb_running, first)
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate(timeout=_SAFETY_NET)
    assert first.returncode == -signal.SIGKILL
    assert not (pgdata / "postmaster.opts").exists()  # killed before any server ran

    _start_and_connect(data)

    aside = [p.name for p in data.iterdir() if p.name.startswith("pgdata.unfinished-")]
    assert len(aside) == 1
    assert (pgdata / "postmaster.opts").exists()


def test_a_paused_first_start_is_named_and_a_kill_of_it_repaired(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pgdata = data / "pgdata"
    first = _start(data)
    _wait_for((pgdata / "PG_VERSION").exists, first)
    os.killpg(first.pid, signal.SIGSTOP)  # it holds the start lock, stopped mid-initdb
    try:
        monkeypatch.delenv("TENANTCTL_DATABASE_URL", raising=False)
        monkeypatch.setenv("TENANTCTL_DATA_DIR", str(data))
        with pytest.raises(ConflictError) as caught:
            database.database_url(start_lock_timeout=0.2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate(timeout=_SAFETY_NET)
    assert caught.value.exit_code == 4
    assert caught.value.retryable is True
    assert f"is being started by pid {first.pid} on " in caught.value.message

    _start_and_connect(data)


def test_a_kill_while_the_bootstrap_backend_holds_the_pid_file_is_repaired(data: Path) -> None:
    """The reported case: initdb's negative pid in postmaster.pid of a half-made dir."""
    pgdata = data / "pgdata"
    first = _start(data)
    _wait_for(lambda: _pid_line(pgdata).startswith("-"), first)
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate(timeout=_SAFETY_NET)

    _start_and_connect(data)
    _start_and_connect(data)  # and again, with the server already running


def _pid_line(pgdata: Path) -> str:
    try:
        return (pgdata / "postmaster.pid").read_text().split("\n", 1)[0]
    except FileNotFoundError:
        return ""


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.fixture(scope="module")
def initialised() -> Iterator[Path]:
    """One data dir, initialised and stopped; each test plants a pid file and starts it."""
    with _data_dir() as data:
        _start_and_connect(data)
        _stop(data / "pgdata")
        yield data


@pytest.mark.parametrize(
    ("reason", "pid"),
    [
        ("negative pid of initdb's bootstrap backend", lambda: -4242),
        ("server killed: pid gone", _dead_pid),
        ("pid reused by a process that is no postgres", os.getpid),
    ],
)
def test_a_stale_pid_file_never_blocks_a_start(
    initialised: Path, reason: str, pid: Callable[[], int]
) -> None:
    pgdata = initialised / "pgdata"
    _stop(pgdata)
    lines = [str(pid()), str(pgdata), "1796116436", "5432", str(pgdata), "", "  0  0", "ready"]
    (pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")

    _start_and_connect(initialised)

    assert _pid_line(pgdata) != lines[0], reason
