"""Every module passes `terraform validate` and checkov; the runner's errors and plan parsing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from controlplane.drivers import terraform
from controlplane.errors import ConflictError, TerraformError

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "terraform" / "modules"
CHECKOV = Path(sys.executable).with_name("checkov")


def _validate(module: str, tmp_path: Path) -> dict[str, object]:
    runner = terraform.SubprocessRunner()
    (tmp_path / "terraformrc").write_text(terraform.cli_config(terraform.DEFAULT_MIRROR, None))
    work = tmp_path / module
    shutil.copytree(MODULES / module, work)
    env = {"TF_CLI_CONFIG_FILE": str(tmp_path / "terraformrc"), "PATH": "/usr/local/bin:/usr/bin"}
    init = runner.run(["init", "-backend=false", "-input=false", "-no-color"], cwd=work, env=env)
    assert init.code == 0, init.stderr
    result = runner.run(["validate", "-json", "-no-color"], cwd=work, env=env)
    report: dict[str, object] = json.loads(result.stdout)
    return report


@pytest.mark.parametrize("module", ["shared-schema", "dedicated-db-postgres"])
def test_builtin_modules_validate(module: str, tmp_path: Path) -> None:
    report = _validate(module, tmp_path)
    assert report["valid"] is True, report["diagnostics"]


@pytest.mark.slow
def test_aws_module_validates_with_the_provider_from_the_mirror(tmp_path: Path) -> None:
    report = _validate("dedicated-db-aws", tmp_path)
    assert report["valid"] is True, report["diagnostics"]


@pytest.mark.slow
def test_checkov_passes_every_module_and_each_skip_says_why() -> None:
    # From the repository root, as `make lint` runs it, so .checkov.yaml applies.
    command = [str(CHECKOV), "-d", "terraform", "--framework", "terraform", "-o", "json"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    report = json.loads(result.stdout)["results"]
    assert [(c["check_id"], c["resource"]) for c in report["failed_checks"]] == []
    passed = {(c["check_id"], c["resource"]) for c in report["passed_checks"]}
    for wanted in [
        ("CKV_AWS_129", "aws_db_instance.db"),  # log exports
        ("CKV2_AWS_30", "aws_db_instance.db"),  # query logging
        ("CKV2_AWS_69", "aws_db_instance.db"),  # TLS only
        ("CKV2_AWS_64", "aws_kms_key.db"),  # key policy
        ("CKV2_AWS_11", "aws_vpc.tenant"),  # flow logs
        ("CKV2_AWS_12", "aws_vpc.tenant"),  # default security group denies all
    ]:
        assert wanted in passed, wanted
    reasons = {
        c["check_id"]: c["check_result"].get("suppress_comment") for c in report["skipped_checks"]
    }
    assert all(len(reason or "") > 20 for reason in reasons.values()), reasons
    assert result.returncode == 0, result.stderr


def _result(stdout: str = "", stderr: str = "", code: int = 1) -> terraform.CommandResult:
    return terraform.CommandResult(("terraform", "apply"), stdout, stderr, code)


LOCK_DIAGNOSTIC = json.dumps(
    {
        "type": "diagnostic",
        "diagnostic": {
            "severity": "error",
            "summary": "Error acquiring the state lock",
            "detail": "Lock Info:\n  ID:        abc-123\n  Who:       ops@host\n",
        },
    }
)


@pytest.mark.parametrize(
    ("reason", "result", "kind", "retryable", "needle"),
    [
        ("lock held", _result(LOCK_DIAGNOSTIC), ConflictError, False, "force-unlock abc-123"),
        (
            "network blip",
            _result(stderr="dial tcp: connection refused"),
            TerraformError,
            True,
            "refused",
        ),
        (
            "two modules granting on one database at once",
            _result(stderr="psql:apply.sql:108: ERROR:  tuple concurrently updated"),
            TerraformError,
            True,
            "concurrently",
        ),
        (
            "bad input",
            _result(stderr="Error: Invalid value for variable"),
            TerraformError,
            False,
            "Invalid",
        ),
    ],
)
def test_classify(
    reason: str, result: terraform.CommandResult, kind: type, retryable: bool, needle: str
) -> None:
    error = terraform.classify(result, workspace=Path("/w"))
    assert type(error) is kind, reason
    assert error.retryable is retryable, reason
    assert needle in error.message, reason


def test_cli_config_uses_only_the_mirror_and_the_cache() -> None:
    text = terraform.cli_config("/opt/tf-plugins", Path("/data/plugin-cache"))
    assert 'path    = "/opt/tf-plugins"' in text
    assert 'exclude = ["registry.terraform.io/*/*"]' in text
    assert 'plugin_cache_dir = "/data/plugin-cache"' in text
