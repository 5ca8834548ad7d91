"""The README's tour is executed: every `tenantctl` line in it must succeed as written."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tenantctl.main import app
from tests.conftest import ROOT


def _tour_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## A short tour", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("tenantctl ")]


def test_tour_is_not_empty() -> None:
    commands = [c[0] for c in _tour_commands()]
    assert {"validate", "plan", "apply", "get", "describe"} <= set(commands)


@pytest.mark.usefixtures("cli_env")
def test_readme_tour_runs(tmp_path: Path) -> None:
    # As in a checkout: the tour's relative paths, but its output in a scratch dir.
    shutil.copytree(ROOT / "tenant-configs", tmp_path / "tenant-configs")
    runner = CliRunner()
    for command in _tour_commands():
        # Output redirections (`> file`) are the shell's business, not tenantctl's.
        args = command[: command.index(">")] if ">" in command else command
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
    assert os.environ["TENANTCTL_DATABASE_URL"]
