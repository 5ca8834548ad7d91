"""`kill -9` a tier change right after every step boundary and inside every step (after
its side effect, before its record), re-run it, and check it converges: the data equal on
both sides, the tenant on its new tier, and no slot, publication or subscription left
behind. Upgrades and downgrades alternate, so each step of both directions is hit (the
steps come from the flow registry)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from controlplane import service
from controlplane.service import FAULT_ENV, FAULT_IN_STEP_ENV, lifecycle, upgrading
from tests.lifecycle.conftest import TenantFolder
from tests.lifecycle.tiering import leftovers, recorded_tier, sums, tenantctl, url_of

pytestmark = pytest.mark.slow

TENANTCTL = [sys.executable, "-m", "tenantctl.main"]
OTHER = {"standard": "enterprise", "enterprise": "standard"}


def _steps(t: TenantFolder) -> list[str]:
    config, _ = service.inputs.load([t.file], None)
    session = service.open_session()
    try:
        return lifecycle.step_names(session, upgrading.KIND, config)
    finally:
        session.store.engine.dispose()


@pytest.mark.parametrize("failpoint", [FAULT_ENV, FAULT_IN_STEP_ENV], ids=["boundary", "inside"])
@pytest.mark.parametrize("start", ["standard", "enterprise"])
def test_kill_at_every_step_then_rerun_converges(
    tenant_folder: TenantFolder, cli_env: dict[str, str], start: str, failpoint: str
) -> None:
    t = tenant_folder
    if start == "enterprise":
        t.file.write_text(t.file.read_text().replace("tier: standard", "tier: enterprise"))
    code, output = tenantctl("create", "-f", str(t.file))
    assert code == 0, output
    steps = _steps(t)
    assert {"migration.copy", "migration.freeze", "migration.verify", "record"} <= set(steps)
    tier = start
    killed: list[str] = []
    mine = steps[::2] if start == "standard" else steps[1::2]
    for step in mine:
        expected = sums(url_of(t, tier), t.schema)
        target = OTHER[tier]
        command = "upgrade" if target == "enterprise" else "downgrade"
        crashed = subprocess.run(
            [*TENANTCTL, command, t.tenant_id, "--tier", target],
            env={**cli_env, failpoint: step},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        # A step that is skipped (unchanged and verified, e.g. `dns`) is no kill point.
        assert crashed.returncode in (-signal.SIGKILL, 0), (step, crashed.stderr[-2000:])
        if crashed.returncode:
            killed.append(step)
            code, output = tenantctl(command, t.tenant_id, "--tier", target)
            assert code == 0, (step, output)

        assert recorded_tier(t) == target, step
        assert sums(url_of(t, target), t.schema) == expected, step
        assert leftovers(t) == [], step
        tier = target
    # Every data step, the target's `database` and `record` always act: each was a kill.
    acting = {s for s in mine if s.startswith("migration.") or s in ("database", "record")}
    assert set(killed) >= acting, killed
    code, output = tenantctl("verify", t.tenant_id)
    assert code == 0, output
