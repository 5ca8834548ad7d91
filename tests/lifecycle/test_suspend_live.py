"""Suspend and resume in live mode: the fake kube-apiserver and the Cloudflare emulator.

An enterprise tenant (in the mesh, on a dedicated database, with initial data): suspend
prunes the ingress allow, adds the Istio DENY and points the CNAME at the suspended
target; resume puts every object back as onboarding made it; the rows stay.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from controlplane.resources import suspension
from tenantctl.main import app
from tests.fakes.cloudflare_api import CloudflareEmulator
from tests.fakes.kube_fixtures import FakeCluster
from tests.lifecycle.conftest import BASE, TenantFolder

runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _cname(emulator: CloudflareEmulator, zone: str, name: str) -> list[str]:
    return [str(r["content"]) for r in emulator.records(zone) if r["name"] == name]


def _policies(cluster: FakeCluster, namespace: str) -> dict[str, dict[str, Any]]:
    found = {}
    for kind in ("NetworkPolicy", "AuthorizationPolicy"):
        for obj in cluster.store.objects(kind, namespace):
            found[f"{kind}/{obj['metadata']['name']}"] = obj
    return found


def test_suspend_and_resume_live(
    live_tenant: TenantFolder,
    kube_apiserver: FakeCluster,
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
) -> None:
    t = live_tenant
    code, output = _invoke("create", "-f", str(t.file))
    assert code == 0, output
    namespace = f"tenant-{t.tenant_id}"
    host = f"{t.tenant_id}.{BASE}"
    onboarded = _policies(kube_apiserver, namespace)
    assert "NetworkPolicy/allow-ingress-gateway" in onboarded
    assert _cname(cloudflare_emulator, cloudflare_zone, host) == [f"ingress.{BASE}"]
    with t.app_connect(dedicated=True) as conn:  # imported into its own database
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (3,)

    code, output = _invoke("suspend", t.tenant_id, "--yes")

    assert code == 0, output
    suspended = _policies(kube_apiserver, namespace)
    assert "NetworkPolicy/allow-ingress-gateway" not in suspended
    assert "NetworkPolicy/default-deny" in suspended
    deny = suspended[f"AuthorizationPolicy/{suspension.SUSPENDED_POLICY}"]
    assert deny["spec"]["action"] == "DENY"
    assert _cname(cloudflare_emulator, cloudflare_zone, host) == [f"suspended.{BASE}"]
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        t.app_connect(dedicated=True)

    code, output = _invoke("resume", t.tenant_id)

    assert code == 0, output
    resumed = _policies(kube_apiserver, namespace)
    assert set(resumed) == set(onboarded)
    assert _cname(cloudflare_emulator, cloudflare_zone, host) == [f"ingress.{BASE}"]
    with t.app_connect(dedicated=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (t.app_role,)
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (3,)
    code, output = _invoke("get", t.tenant_id, "-o", "json")
    assert json.loads(output)["status"] == "active"
