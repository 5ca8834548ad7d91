"""A tier change in live mode: the fake kube-apiserver, the Cloudflare emulator, terraform
and real Postgres. A standard tenant with data goes to enterprise and back: its rows move
each way, the namespace gains the mesh policies (and loses them), DNS stays on ingress."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.cloudflare_api import CloudflareEmulator
from tests.fakes.kube_fixtures import FakeCluster
from tests.lifecycle.conftest import BASE, TenantFolder
from tests.lifecycle.test_suspend_live import _cname, _invoke

pytestmark = pytest.mark.slow


def _mesh(cluster: FakeCluster, namespace: str) -> list[str]:
    return [o["metadata"]["name"] for o in cluster.store.objects("PeerAuthentication", namespace)]


def _names(rows: Any) -> list[str]:
    return [r[0] for r in rows]


def test_upgrade_then_downgrade_live_moves_the_rows_and_the_policies(
    live_tenant: TenantFolder,
    kube_apiserver: FakeCluster,
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
) -> None:
    t = live_tenant
    t.file.write_text(t.file.read_text().replace("tier: enterprise", "tier: standard"))
    namespace, host = f"tenant-{t.tenant_id}", f"{t.tenant_id}.{BASE}"
    code, output = _invoke("create", "-f", str(t.file))
    assert code == 0, output
    assert _mesh(kube_apiserver, namespace) == []
    with t.app_connect() as conn:
        before = _names(conn.execute("SELECT name FROM customers ORDER BY id").fetchall())
    assert before == ["Ada", "Grace", "Hopper, Grace"]

    code, output = _invoke("upgrade", t.tenant_id, "--tier", "enterprise")

    assert code == 0, output
    assert "standard -> enterprise" in output and "moved by logical replication" in output
    assert _mesh(kube_apiserver, namespace) != []  # Istio mTLS STRICT for enterprise
    assert _cname(cloudflare_emulator, cloudflare_zone, host) == [f"ingress.{BASE}"]
    with t.app_connect(dedicated=True) as conn:
        rows = conn.execute("SELECT name FROM customers ORDER BY id").fetchall()
    assert _names(rows) == before

    code, output = _invoke("downgrade", t.tenant_id, "--tier", "standard")

    assert code == 0, output
    assert "enterprise -> standard" in output
    assert _mesh(kube_apiserver, namespace) == []
    with t.app_connect() as conn:
        rows = conn.execute("SELECT name FROM customers ORDER BY id").fetchall()
    assert _names(rows) == before
    code, output = _invoke("verify", t.tenant_id)
    assert code == 0, output
