"""Drift in every backend, live: the fake kube-apiserver, the Cloudflare emulator, real Postgres.

A standard tenant is onboarded by `apply`; then someone deletes a NetworkPolicy, adds an
allow-all rule to the default deny, raises the quota, deletes the DNS record and revokes
the app role's grant on its schema. Observe-only (`pause-reconcile`): one reconcile pass
reports all five and changes nothing. Reconciled again: one pass heals all five, audits
them, and the next pass writes nothing.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from tenantctl.main import app
from tests.fakes.cloudflare_api import CloudflareEmulator
from tests.fakes.kube_fixtures import FakeCluster
from tests.lifecycle.conftest import BASE, TenantFolder, folder_tenant, live_folder, write_tenant

runner = CliRunner()


def _json(*args: str) -> tuple[int, Any]:
    result = runner.invoke(app, [*args, "-o", "json"])
    return result.exit_code, json.loads(result.stdout or "null")


@pytest.fixture
def live_fleet(
    cli_env: dict[str, str],
    kube_apiserver: FakeCluster,
    cloudflare_zone: str,
    cloudflare_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> TenantFolder:
    """A directory with one standard tenant and platform.yaml in live mode on the fakes."""
    folder = live_folder(
        cli_env,
        kube_apiserver,
        cloudflare_zone,
        cloudflare_url,
        monkeypatch,
        clusters={"shared": "fake"},
    )
    tenant_id = f"rl-{uuid.uuid4().hex[:10]}"
    write_tenant(folder, tenant_id)
    return folder_tenant(cli_env, folder, tenant_id)


def _cname(emulator: CloudflareEmulator, zone: str, host: str) -> list[dict[str, Any]]:
    return [r for r in emulator.records(zone) if r["name"] == host and r["type"] == "CNAME"]


def _has_usage(t: TenantFolder) -> bool:
    with psycopg.connect(t.shared_url()) as conn:
        row = conn.execute(
            "SELECT has_schema_privilege(%s, %s, 'USAGE')", (t.app_role, t.schema)
        ).fetchone()
    return bool(row and row[0])


def _inject_drift(
    t: TenantFolder, cluster: FakeCluster, emulator: CloudflareEmulator, zone: str
) -> None:
    namespace = f"tenant-{t.tenant_id}"
    cluster.store.remove("NetworkPolicy", "allow-ingress-gateway", namespace)

    def allow_all(policy: dict[str, Any]) -> None:
        policy["spec"]["ingress"] = [{}]

    def more_pods(quota: dict[str, Any]) -> None:
        quota["spec"]["hard"]["pods"] = "500"

    cluster.store.edit("NetworkPolicy", "default-deny", namespace, change=allow_all)
    cluster.store.edit("ResourceQuota", "tenant-quota", namespace, change=more_pods)
    [record] = _cname(emulator, zone, f"{t.tenant_id}.{BASE}")
    with emulator._lock:  # someone deletes the record in the dashboard
        del emulator.zones[zone].records[record["id"]]
    with psycopg.connect(t.shared_url(), autocommit=True) as conn:
        conn.execute(f'REVOKE USAGE ON SCHEMA "{t.schema}" FROM "{t.app_role}"')


def _drifted(
    t: TenantFolder, cluster: FakeCluster, emulator: CloudflareEmulator, zone: str
) -> set[str]:
    """Which of the five injected drifts are present."""
    namespace = f"tenant-{t.tenant_id}"
    found = set()
    if cluster.store.get("NetworkPolicy", "allow-ingress-gateway", namespace) is None:
        found.add("deleted policy")
    deny = cluster.store.get("NetworkPolicy", "default-deny", namespace)
    if deny is not None and deny["spec"].get("ingress"):
        found.add("allow-all rule")
    quota = cluster.store.get("ResourceQuota", "tenant-quota", namespace)
    if quota is not None and quota["spec"]["hard"]["pods"] != "50":
        found.add("quota")
    if not _cname(emulator, zone, f"{t.tenant_id}.{BASE}"):
        found.add("dns record")
    if not _has_usage(t):
        found.add("grant")
    return found


ALL = {"deleted policy", "allow-all rule", "quota", "dns record", "grant"}


@pytest.mark.slow
def test_one_pass_reports_drift_in_every_backend_when_observed_and_heals_it_otherwise(
    live_fleet: TenantFolder,
    kube_apiserver: FakeCluster,
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
) -> None:
    t, cluster, emulator, zone = live_fleet, kube_apiserver, cloudflare_emulator, cloudflare_zone
    code, rows = _json("apply", "-f", str(t.folder), "--yes")
    assert code == 0, rows
    assert _drifted(t, cluster, emulator, zone) == set()
    assert runner.invoke(app, ["pause-reconcile", t.tenant_id]).exit_code == 0
    _inject_drift(t, cluster, emulator, zone)
    assert _drifted(t, cluster, emulator, zone) == ALL

    code, rows = _json("reconcile", str(t.folder))

    assert code == 7, rows
    [row] = rows
    assert row["result"] == "drifted"
    assert {p.split(":")[0] for p in row["message"].split("; ")} >= {
        "database",
        "compute",
        "network",
        "dns",
    }
    assert _drifted(t, cluster, emulator, zone) == ALL  # reported, left

    assert runner.invoke(app, ["resume-reconcile", t.tenant_id]).exit_code == 0
    code, rows = _json("reconcile", str(t.folder))

    assert code == 0, rows
    assert [r["result"] for r in rows] == ["repaired"]
    assert _drifted(t, cluster, emulator, zone) == set()
    [entry] = [
        e for e in _json("audit", "--tenant", t.tenant_id)[1] if e["action"] == "reconcile.repaired"
    ]
    assert {p.split(":")[0] for p in entry["detail"]["problems"]} >= {
        "database",
        "compute",
        "network",
        "dns",
    }

    cluster.reset_requests()
    writes_before = len(emulator.writes())
    code, rows = _json("reconcile", str(t.folder))
    assert code == 0 and [r["result"] for r in rows] == ["unchanged"]
    assert cluster.writes() == [] and len(emulator.writes()) == writes_before
