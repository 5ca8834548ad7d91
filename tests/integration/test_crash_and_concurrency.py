"""Real `tenantctl` processes: kill -9 between steps, and two applies at once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from controlplane.service import FAULT_ENV
from controlplane.state import database
from controlplane.state.store import Store
from tests.conftest import EXAMPLES

TENANTCTL = [sys.executable, "-m", "tenantctl.main"]


def _tenantctl(
    env: dict[str, str], *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TENANTCTL, *args],
        env={**env, **(extra or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _applied_steps(url: str) -> dict[tuple[str, str], int]:
    engine = database.connect(url)
    counts: dict[tuple[str, str], int] = {}
    for entry in Store(engine, actor="test").audit_entries(limit=10_000):
        if entry["action"] == "step.applied":
            key = (entry["tenant_id"], entry["detail"]["step"])
            counts[key] = counts.get(key, 0) + 1
    engine.dispose()
    return counts


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    folder = tmp_path / "tenant-configs"
    shutil.copytree(EXAMPLES, folder)
    return folder


@pytest.mark.slow
def test_kill_9_between_steps_then_rerun_converges_applying_each_step_once(
    cli_env: dict[str, str], configs: Path
) -> None:
    crashed = _tenantctl(
        cli_env,
        "apply",
        "-f",
        str(configs),
        "--yes",
        "--parallel",
        "1",
        extra={FAULT_ENV: "record"},
    )
    assert crashed.returncode == -signal.SIGKILL
    after_crash = _applied_steps(cli_env["TENANTCTL_DATABASE_URL"])
    assert len(after_crash) == 1 and next(iter(after_crash))[1] == "record"

    rerun = _tenantctl(cli_env, "apply", "-f", str(configs), "--yes", "-o", "json")
    assert rerun.returncode == 0, rerun.stderr
    counts = _applied_steps(cli_env["TENANTCTL_DATABASE_URL"])
    tenants = {t for t, _ in counts}
    assert len(tenants) == 5
    assert set(counts.values()) == {1}, counts  # every step of every tenant applied exactly once

    listed = json.loads(_tenantctl(cli_env, "get", "-o", "json").stdout)
    assert {t["status"] for t in listed} == {"active"}


@pytest.mark.slow
def test_two_concurrent_applies_never_overlap_on_a_tenant(
    cli_env: dict[str, str], configs: Path
) -> None:
    procs = [
        subprocess.Popen(
            [
                *TENANTCTL,
                "apply",
                "-f",
                str(configs),
                "--yes",
                "-o",
                "json",
                "--lock-timeout",
                "60",
            ],
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    outcomes = [json.loads(out) for out, _ in results]
    by_tenant: dict[str, list[str]] = {}
    for outcome in outcomes:
        for row in outcome:
            by_tenant.setdefault(row["tenant"], []).append(row["result"])
    # Each tenant was applied by exactly one process; the other found it converged.
    assert all(sorted(r) == ["applied", "unchanged"] for r in by_tenant.values()), by_tenant
    counts = _applied_steps(cli_env["TENANTCTL_DATABASE_URL"])
    assert set(counts.values()) == {1}, counts


def test_lock_timeout_zero_fails_fast_with_lock_message(
    cli_env: dict[str, str], configs: Path
) -> None:
    engine = database.connect(cli_env["TENANTCTL_DATABASE_URL"])
    Store(engine, actor="test").acquire("globex", "other-run", wait=0)
    engine.dispose()
    result = _tenantctl(
        cli_env, "apply", "-f", str(configs / "globex.yaml"), "--yes", "--lock-timeout", "0"
    )
    assert result.returncode == 4
    assert "tenant 'globex' is locked by other-run" in result.stderr
    assert os.environ.get(FAULT_ENV) is None


@pytest.mark.slow
def test_ctrl_c_finishes_running_steps_says_what_resumes_and_the_next_apply_does(
    cli_env: dict[str, str], configs: Path
) -> None:
    proc = subprocess.Popen(
        [*TENANTCTL, "apply", "-f", str(configs), "--yes", "--parallel", "1"],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # the first step finished: the run is under way
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, first + rest
    assert "interrupted" in rest and "resume at their first unfinished step" in rest
    rerun = _tenantctl(cli_env, "apply", "-f", str(configs), "--yes", "-o", "json")
    assert rerun.returncode == 0, rerun.stderr
    listed = json.loads(_tenantctl(cli_env, "get", "-o", "json").stdout)
    assert {t["status"] for t in listed} == {"active"}
