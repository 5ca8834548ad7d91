"""The Terraform runner with the real binary: least-privilege environment, streamed
progress events and a bounded plugin-cache lock (issue 9).

The module under test is a probe of built-in resources only: its `local-exec` writes the
environment it was given to `env.txt` in the workspace and, when `wait_for` names a FIFO,
blocks until someone writes a line into it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.drivers import terraform
from controlplane.errors import ConflictError
from controlplane.models.terraform import TerraformEvent, TerraformUnit
from tests.statelock import locked_state

PROBE = """
variable "probe_secret" {
  type      = string
  sensitive = true
}

variable "wait_for" {
  type    = string
  default = ""
}

resource "terraform_data" "probe" {
  input = var.wait_for
  provisioner "local-exec" {
    command     = <<-EOT
      env > env.txt
      if [ -n "$WAIT_FOR" ]; then read go < "$WAIT_FOR"; fi
      echo released
    EOT
    environment = { WAIT_FOR = var.wait_for }
  }
}

output "probe_id" {
  value = terraform_data.probe.id
}
"""
_SAFETY_NET = 300.0  # seconds: only ends a hung terraform, never measures one
_VERIFIER = "verifier-of-the-app-password"  # the module's one secret (a TF_VAR_)


@pytest.fixture
def modules(tmp_path: Path) -> Path:
    (tmp_path / "modules" / "probe").mkdir(parents=True)
    (tmp_path / "modules" / "probe" / "main.tf").write_text(PROBE)
    return tmp_path / "modules"


def _driver(root: Path, modules: Path, **options: object) -> terraform.Terraform:
    targets = {
        "probe": terraform.Target(env={"PGHOST": "db.internal"}),
        "cloud": terraform.Target(inherit=("AWS_",)),
    }
    return terraform.Terraform(
        root,
        modules,
        targets,
        secrets=lambda _tenant, _module: {"probe_secret": _VERIFIER},
        runner=terraform.SubprocessRunner(timeout=_SAFETY_NET),
        **options,  # type: ignore[arg-type]
    )


def _unit(tenant_id: str, target: str = "probe", **inputs: object) -> TerraformUnit:
    return TerraformUnit(tenant_id, "probe", target, "us-east-1", inputs)


def _seen_env(driver: terraform.Terraform, unit: TerraformUnit) -> dict[str, str]:
    text = (driver.workspace(unit.tenant_id, unit.module) / "env.txt").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_terraform_and_local_exec_see_only_allowed_variables(
    tmp_path: Path, modules: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    control_plane_secrets = {
        "TENANTCTL_MASTER_KEY": "master-key",
        "TENANTCTL_DATABASE_URL": "postgresql://admin:pw@state/db",
        "CLOUDFLARE_API_TOKEN": "cf-token",
        "PGPASSWORD": "ambient-admin-password",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "TF_VAR_probe_secret": "ambient-override",
    }
    for name, value in control_plane_secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_MESSAGES", "C")
    driver = _driver(tmp_path / "tf", modules)
    plain, cloud = _unit("plain"), _unit("cloud", target="cloud")
    driver.apply(plain)
    driver.apply(cloud)

    seen = _seen_env(driver, plain)
    leaked = set(seen) & (set(control_plane_secrets) - {"TF_VAR_probe_secret"})
    assert leaked == set()
    assert seen["TF_VAR_probe_secret"] == _VERIFIER  # the module's own, not the ambient one
    assert seen["PGHOST"] == "db.internal"  # the target's settings
    assert seen["PATH"] == os.environ["PATH"]
    assert seen["LC_MESSAGES"] == "C"
    assert seen["TF_CLI_CONFIG_FILE"] == str(tmp_path / "tf" / "terraformrc")
    # A target that names AWS_ (the AWS provider) gets the credentials, and only those.
    seen_by_cloud = _seen_env(driver, cloud)
    aws_secret = control_plane_secrets["AWS_SECRET_ACCESS_KEY"]
    assert seen_by_cloud["AWS_SECRET_ACCESS_KEY"] == aws_secret
    assert "TENANTCTL_MASTER_KEY" not in seen_by_cloud
    assert "PGHOST" not in seen_by_cloud


def test_apply_streams_typed_events_while_terraform_runs(tmp_path: Path, modules: Path) -> None:
    # The probe's local-exec blocks until a line arrives on this FIFO, and only the callback
    # writes one — on `apply_start`. The apply can only finish if that event reached the
    # callback while terraform was still running.
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    events: list[TerraformEvent] = []

    def on_event(event: TerraformEvent) -> None:
        events.append(event)
        if event.kind == "apply_start":
            with gate.open("w") as fifo:
                fifo.write("go\n")

    driver = _driver(tmp_path / "tf", modules, on_event=on_event)
    outputs = driver.apply(_unit("streamed", wait_for=str(gate)))

    kinds = [e.kind for e in events]
    want = ["planned_change", "apply_start", "provision_start", "provision_complete"]
    want += ["apply_complete", "change_summary", "outputs"]
    assert _in_order(want, kinds), kinds
    assert kinds[0] == "version"
    start = events[kinds.index("apply_start")]
    assert start.resource == "module.database.terraform_data.probe"
    assert start.message.endswith("Creating...")
    assert any(e.message.endswith("(local-exec): released") for e in events)
    assert {(e.tenant_id, e.module, e.command) for e in events} == {("streamed", "probe", "apply")}
    assert f"[id={outputs['probe_id']}]" in events[kinds.index("apply_complete")].message


def test_a_failing_progress_callback_never_aborts_an_apply(
    tmp_path: Path, modules: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def broken_display(event: TerraformEvent) -> None:
        calls.append(event.kind)
        raise RuntimeError(event.kind)

    driver = _driver(tmp_path / "tf", modules, on_event=broken_display)
    outputs = driver.apply(_unit("displayed"))

    assert outputs["probe_id"]
    assert "apply_complete" in calls  # every event was still offered
    assert "progress callback failed on version" in caplog.text


def _in_order(wanted: list[str], kinds: list[str]) -> bool:
    rest = iter(kinds)
    return all(kind in rest for kind in wanted)


_HOLDER = """
import sys
from pathlib import Path

from controlplane.drivers import terraform
from controlplane.models.terraform import TerraformUnit

root, modules, binary = sys.argv[1:]
driver = terraform.Terraform(
    Path(root),
    Path(modules),
    {"probe": terraform.Target()},
    runner=terraform.SubprocessRunner(binary=binary),
    holder="alice/laptop/4242/op-1",
)
driver.prepare(TerraformUnit("holder", "probe", "probe", "us-east-1"))
"""


@pytest.fixture
def paused_holder(tmp_path: Path, modules: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process stopped (SIGSTOP) while it holds the plugin-cache lock in `terraform init`."""
    stopper = tmp_path / "terraform-that-pauses-its-caller"
    stopper.write_text("#!/bin/sh\nkill -STOP $PPID\n")
    stopper.chmod(0o755)
    args = [sys.executable, "-c", _HOLDER, str(tmp_path / "tf"), str(modules), str(stopper)]
    holder = subprocess.Popen(args)
    _, status = os.waitpid(holder.pid, os.WUNTRACED)  # returns once the holder is stopped
    assert os.WIFSTOPPED(status)
    yield holder
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=_SAFETY_NET)


def test_init_behind_a_paused_lock_holder_fails_naming_it(
    tmp_path: Path, modules: Path, paused_holder: subprocess.Popen[bytes]
) -> None:
    driver = _driver(tmp_path / "tf", modules, init_lock_timeout=0.2)
    unit = _unit("waiting")

    with pytest.raises(ConflictError) as caught:
        driver.prepare(unit)

    error = caught.value
    assert error.exit_code == 4
    assert error.retryable is False  # the wait already spent the caller's whole lock timeout
    assert "held by alice/laptop/4242/op-1" in error.message
    assert f"pid {paused_holder.pid}" in error.message
    assert f"kill {paused_holder.pid}" in error.message
    assert not (driver.workspace(unit.tenant_id, unit.module) / ".terraform").exists()


def test_the_lock_of_a_holder_that_died_is_free(
    tmp_path: Path, modules: Path, paused_holder: subprocess.Popen[bytes]
) -> None:
    paused_holder.send_signal(signal.SIGKILL)
    paused_holder.wait(timeout=_SAFETY_NET)
    driver = _driver(tmp_path / "tf", modules, init_lock_timeout=0.2)

    workspace = driver.prepare(_unit("after"))

    assert (workspace / ".terraform" / "tenantctl-init").exists()


def _cut_short(state: Path) -> None:
    """What a kill inside terraform's in-place state write leaves: the first half."""
    text = state.read_text()
    state.write_text(text[: len(text) // 2])


def test_a_state_cut_short_by_a_kill_is_restored_from_its_backup(
    tmp_path: Path, modules: Path, caplog: pytest.LogCaptureFixture
) -> None:
    driver = _driver(tmp_path / "tf", modules)
    first = driver.apply(_unit("cut"))
    changed = _unit("cut", wait_for="changed")  # an in-place update: terraform writes a backup
    driver.apply(changed)
    state = driver.workspace("cut", "probe") / "terraform.tfstate"
    _cut_short(state)

    again = driver.apply(changed)

    assert again["probe_id"] == first["probe_id"]  # the recorded resource, not a new one
    assert "cut short: restored from its backup" in caplog.text
    assert json.loads(state.read_text())["resources"]


def test_a_first_state_cut_short_without_backup_is_dropped_and_made_again(
    tmp_path: Path, modules: Path, caplog: pytest.LogCaptureFixture
) -> None:
    driver = _driver(tmp_path / "tf", modules)
    unit = _unit("first")
    first = driver.apply(unit)
    workspace = driver.workspace("first", "probe")
    (workspace / "terraform.tfstate.backup").unlink(missing_ok=True)
    _cut_short(workspace / "terraform.tfstate")

    assert driver.outputs(unit) is None  # read as never applied, not a JSON error
    again = driver.apply(unit)

    assert again["probe_id"] != first["probe_id"]
    assert "cut short and has no backup: removed" in caplog.text


def test_an_empty_state_that_a_running_terraform_holds_is_left_alone(
    tmp_path: Path, modules: Path
) -> None:
    driver = _driver(tmp_path / "tf", modules)
    unit = _unit("running")
    workspace = driver.prepare(unit)
    state = workspace / "terraform.tfstate"
    with locked_state(state):
        assert driver.outputs(unit) is None
        assert state.exists()  # not taken for a state cut short
