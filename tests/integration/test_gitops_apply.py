"""`apply -f DIR` as CI runs it: removed files, pending deletion, the blast-radius guard.

Render mode on the embedded default layout (real terraform, real Postgres): a tenant whose
file left the directory is marked `pending-deletion`, never deleted without `--prune`;
`--prune` past `--max-deletions` refuses before anything changes, and within it deletes
through the delete flow with a verified export; a tenant recorded from another directory is
outside the run.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from controlplane import service
from tenantctl.main import app
from tests.conftest import EXAMPLES
from tests.lifecycle.conftest import write_tenant

runner = CliRunner()


def _json(*args: str) -> tuple[int, Any, str]:
    """Exit code, parsed stdout and stderr of a `-o json` command."""
    result = runner.invoke(app, [*args, "-o", "json"])
    return result.exit_code, json.loads(result.stdout or "null"), result.stderr


def _fleet(folder: Path, ids: list[str]) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(EXAMPLES / "platform.yaml", folder / "platform.yaml")
    for tenant_id in ids:
        write_tenant(folder, tenant_id)
    return folder


@pytest.mark.slow
@pytest.mark.usefixtures("cli_env")
def test_removed_files_are_pending_deletion_and_prune_past_the_guard_changes_nothing(
    tmp_path: Path,
) -> None:
    prefix = f"gp{uuid.uuid4().hex[:6]}"
    ids = [f"{prefix}-{n}" for n in range(5)]
    fleet = _fleet(tmp_path / "fleet", ids)
    other = _fleet(tmp_path / "other", [f"{prefix}-other"])
    code, outcomes, _ = _json("apply", "-f", str(fleet), "--yes", "--parallel", "4")
    assert code == 0 and {o["result"] for o in outcomes} == {"applied"}, outcomes
    assert _json("apply", "-f", str(other), "--yes")[0] == 0
    gone = ids[:3]
    for tenant_id in gone:
        (fleet / f"{tenant_id}.yaml").unlink()

    code, refused, errors = _json("apply", "-f", str(fleet), "--yes", "--prune")

    assert code == 4 and refused is None
    assert f"refusing to delete {', '.join(gone)}" in errors
    assert "blast-radius limit of 1" in errors and "nothing was changed" in errors
    code, tenants, _ = _json("get")
    assert {t["status"] for t in tenants} == {"active"} and len(tenants) == 6
    assert all(t["marks"] == [] for t in tenants)  # not even marked

    code, plans, _ = _json("plan", "-f", str(fleet))
    assert code == 0
    assert {p["tenant"]: p["action"] for p in plans} == {
        **dict.fromkeys(gone, "pending-deletion"),
        **dict.fromkeys(ids[3:], "unchanged"),
    }  # the tenant of the other directory is outside this run
    code, plans, _ = _json("plan", "-f", str(fleet), "--prune")
    assert {p["action"] for p in plans if p["tenant"] in gone} == {"delete"}

    code, outcomes, _ = _json("apply", "-f", str(fleet), "--yes")

    assert code == 0
    assert {o["tenant"]: o["result"] for o in outcomes} == {
        **dict.fromkeys(gone, "pending-deletion"),
        **dict.fromkeys(ids[3:], "unchanged"),
    }
    marks = {t["id"]: t["marks"] for t in _json("get")[1]}
    assert {t for t, m in marks.items() if m == ["pending-deletion"]} == set(gone)
    audit = _json("audit", "--limit", "50")[1]
    assert {e["tenant_id"] for e in audit if e["action"] == "pending-deletion"} == set(gone)

    # The file comes back (a reverted commit): the mark goes, nothing was lost.
    write_tenant(fleet, gone[0])
    code, outcomes, _ = _json("apply", "-f", str(fleet), "--yes")
    assert code == 0
    assert {o["tenant"]: o["result"] for o in outcomes}[gone[0]] == "unchanged"
    assert _json("get", gone[0])[1]["marks"] == []
    (fleet / f"{gone[0]}.yaml").unlink()

    # Intended: the three go through the delete flow, each with a verified export.
    code, outcomes, _ = _json("apply", "-f", str(fleet), "--yes", "--prune", "--max-deletions", "3")

    assert code == 0, outcomes
    assert {o["tenant"]: o["result"] for o in outcomes} == {
        **dict.fromkeys(gone, "deleted"),
        **dict.fromkeys(ids[3:], "unchanged"),
    }
    session = service.open_session()
    for tenant_id in gone:
        assert service.queries.get(session, tenant_id)["status"] == "deleted"
        [export] = service.offboarding.exports(session, tenant_id)
        assert export["verified_at"] is not None
    assert service.queries.get(session, f"{prefix}-other")["status"] == "active"
    code, outcomes, _ = _json("apply", "-f", str(fleet), "--yes", "--prune")
    assert code == 0 and {o["result"] for o in outcomes} == {"unchanged"}  # deleted: done


@pytest.mark.slow
@pytest.mark.usefixtures("cli_env")
def test_a_pruned_tenant_is_no_longer_pending_and_a_restored_one_is_marked_again(
    tmp_path: Path,
) -> None:
    prefix = f"gm{uuid.uuid4().hex[:6]}"
    kept, gone = f"{prefix}-kept", f"{prefix}-gone"
    fleet = _fleet(tmp_path / "fleet", [kept, gone])
    assert _json("apply", "-f", str(fleet), "--yes")[0] == 0
    (fleet / f"{gone}.yaml").unlink()
    assert _json("apply", "-f", str(fleet), "--yes")[0] == 0
    assert _json("get", gone)[1]["marks"] == ["pending-deletion"]

    code, outcomes, _ = _json("apply", "-f", str(fleet), "--yes", "--prune")

    assert code == 0 and {o["tenant"]: o["result"] for o in outcomes}[gone] == "deleted"
    shown = _json("get", gone)[1]
    assert (shown["status"], shown["marks"]) == ("deleted", [])  # nothing is pending now
    assert _json("describe", gone)[1]["marks"] == []
    code, outcomes, _ = _json("apply", "-f", str(fleet), "--yes", "--prune")
    assert code == 0 and [o["tenant"] for o in outcomes] == [kept]

    # Restored while its file is still gone: pending deletion again from the next apply.
    assert service.offboarding.restore(service.open_session(), gone).status == "succeeded"
    assert _json("get", gone)[1]["marks"] == []
    code, outcomes, _ = _json("apply", "-f", str(fleet), "--yes")
    assert code == 0 and {o["tenant"]: o["result"] for o in outcomes}[gone] == "pending-deletion"
    assert _json("get", gone)[1]["marks"] == ["pending-deletion"]


@pytest.mark.slow
@pytest.mark.usefixtures("cli_env")
def test_platform_max_deletions_zero_refuses_even_one_and_the_flag_overrides_it(
    tmp_path: Path,
) -> None:
    prefix = f"gz{uuid.uuid4().hex[:6]}"
    fleet = _fleet(tmp_path / "fleet", [f"{prefix}-a", f"{prefix}-b"])
    platform_file = fleet / "platform.yaml"
    platform_file.write_text(platform_file.read_text() + "  max_deletions: 0\n")
    assert _json("apply", "-f", str(fleet), "--yes")[0] == 0
    (fleet / f"{prefix}-b.yaml").unlink()

    code, _, errors = _json("apply", "-f", str(fleet), "--yes", "--prune")
    assert code == 4 and f"refusing to delete {prefix}-b" in errors
    assert "limit of 0" in errors

    # The blast-radius limit is no infrastructure setting: changing it changes no tenant.
    platform_file.write_text(platform_file.read_text().replace("max_deletions: 0", ""))
    code, plans, _ = _json("plan", "-f", str(fleet))
    assert {p["tenant"]: p["action"] for p in plans} == {
        f"{prefix}-a": "unchanged",
        f"{prefix}-b": "pending-deletion",
    }
