"""`tenantctl serve` refuses to start on bad input, with the exit-code table's codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tenantctl.main import app


@pytest.mark.usefixtures("cli_env")
def test_invalid_platform_file_is_exit_2_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "platform.yaml"
    bad.write_text("platform:\n  base_domain: 12\n  colour: blue\n")
    result = CliRunner().invoke(app, ["serve", "--platform", str(bad), "--port", "0"])
    assert result.exit_code == 2, result.output
    assert f"{bad}:3" in result.output


def test_unreachable_state_store_is_exit_5(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTCTL_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    result = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 5, result.output
    assert "cannot reach the state store" in result.output
