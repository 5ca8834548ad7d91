"""Which recorded tenants a directory run speaks for, downgrades, and the guard (tables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controlplane.config.loading import TenantSource
from controlplane.models.tenants import Tenant
from controlplane.service import fleets


def _source(tenant_id: str, tier: str = "standard") -> TenantSource:
    tenant = Tenant.model_validate(
        {"id": tenant_id, "name": tenant_id, "tier": tier, "region": "us-east-1"}
    )
    return TenantSource(tenant, f"{tenant_id}.yaml", "")


def _row(source_file: str, tier: str = "standard", status: str = "active") -> dict[str, Any]:
    return {"source_file": source_file, "tier": tier, "status": status}


@pytest.mark.parametrize(
    ("reason", "rows", "want"),
    [
        ("file gone from the directory", {"a": _row("/git/fleet/a.yaml")}, ["a"]),
        ("recorded from another directory", {"a": _row("/git/other/a.yaml")}, []),
        ("recorded from a subfolder (not read)", {"a": _row("/git/fleet/sub/a.yaml")}, []),
        ("recorded without a file (API)", {"a": _row("")}, []),
        ("already being deleted", {"a": _row("/git/fleet/a.yaml", status="deleted")}, []),
        ("still declared (by any file)", {"kept": _row("/git/fleet/old-name.yaml")}, []),
    ],
)
def test_missing(reason: str, rows: dict[str, dict[str, Any]], want: list[str]) -> None:
    scope = fleets.Scope(frozenset({Path("/git/fleet")}))
    assert fleets.missing(rows, [_source("kept")], scope) == want, reason


def test_a_file_given_by_name_scopes_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("")
    assert fleets.Scope.of([tmp_path / "a.yaml"]).folders == frozenset()
    assert fleets.Scope.of([tmp_path]).holds(str(tmp_path.resolve() / "a.yaml"))


@pytest.mark.parametrize(
    ("reason", "recorded", "wanted", "want"),
    [
        ("enterprise to standard", "enterprise", "standard", {"t": ("enterprise", "standard")}),
        ("premium to enterprise", "premium", "enterprise", {"t": ("premium", "enterprise")}),
        ("an upgrade is no downgrade", "standard", "premium", {}),
        ("same tier", "enterprise", "enterprise", {}),
    ],
)
def test_downgrades(reason: str, recorded: str, wanted: str, want: dict[str, Any]) -> None:
    rows = {"t": _row("/f/t.yaml", tier=recorded)}
    assert fleets.downgrades(rows, [_source("t", wanted)]) == want, reason


@pytest.mark.parametrize(
    ("reason", "deleting", "downgrading", "limit", "want"),
    [
        ("one deletion within the default", ["a"], [], 1, None),
        ("three deletions over one", ["a", "b", "c"], [], 1, "refusing to delete a, b, c: 3"),
        ("deletions and downgrades add up", ["a"], ["z"], 1, "delete a and downgrade z: 2"),
        ("limit zero refuses even one", [], ["z"], 0, "downgrade z: 1 tenant"),
        ("an explicit limit lets them through", ["a", "b", "c"], [], 3, None),
    ],
)
def test_guard(
    reason: str, deleting: list[str], downgrading: list[str], limit: int, want: str | None
) -> None:
    if want is None:
        fleets.guard(deleting, downgrading, limit)
        return
    with pytest.raises(fleets.BlastRadiusError, match=want) as raised:
        fleets.guard(deleting, downgrading, limit)
    assert raised.value.exit_code == 4, reason
    assert "nothing was changed" in raised.value.message
