"""`reconcile --source kubernetes`: Tenant objects on the fake apiserver drive the real flows.

A Tenant object created through the official client is onboarded (state store, terraform on
the real Postgres, live Kubernetes on the fake cluster) and its status says Ready with the
observed generation; a converged object costs no writes; an invalid spec is reported Failed;
deleting the object goes through the finalizer and the delete flow.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client
from typer.testing import CliRunner

from controlplane import service
from controlplane.service import crd_source
from tenantctl.main import app
from tests.integration.test_kubernetes_onboarding import _live_configs

GROUP, VERSION, PLURAL = "tenantctl.io", "v1", "tenants"


def _conditions(obj: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in obj["status"]["conditions"]}


class Cluster:
    """The fake cluster with the Tenant CRD installed, and the source reconciling it."""

    def __init__(self, kube: Any, configs: Path) -> None:
        self.kube = kube
        api = kube.api_client()
        k8s_client.ApiextensionsV1Api(api).create_custom_resource_definition(
            crd_source.definition()
        )
        self.objects = k8s_client.CustomObjectsApi(api)
        self.platform, self.sources = service.inputs.load([configs])
        self.session = service.open_session(out_dir=configs.parent / "out")
        self.source = crd_source.open_source(self.session, self.platform)

    def create(self, tenant_id: str, **spec: Any) -> dict[str, Any]:
        source = next(s for s in self.sources if s.tenant.id == tenant_id)
        obj = crd_source.to_object(source)
        obj["spec"] = {**obj["spec"], **spec}
        created: dict[str, Any] = self.objects.create_cluster_custom_object(
            GROUP, VERSION, PLURAL, obj
        )
        return created

    def read(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.objects.get_cluster_custom_object(GROUP, VERSION, PLURAL, name)
        return found


@pytest.fixture
def cluster(cli_env: dict[str, str], kube_apiserver: Any, tmp_path: Path) -> Cluster:
    return Cluster(kube_apiserver, _live_configs(tmp_path, kube_apiserver.kubeconfig))


@pytest.mark.slow
def test_a_tenant_object_is_onboarded_and_reports_ready(cluster: Cluster) -> None:
    cluster.create("bluebird")
    verdicts, _ = cluster.source.reconcile_all()
    assert [(v.tenant_id, v.action) for v in verdicts] == [("bluebird", "applied")], verdicts

    obj = cluster.read("bluebird")
    assert crd_source.FINALIZER in obj["metadata"]["finalizers"]
    assert _conditions(obj) == {
        "Ready": "True",
        "Reconciling": "False",
        "Drifted": "False",
        "Failed": "False",
    }
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"] == 1
    assert obj["status"]["phase"] == "active"
    assert obj["status"]["step"] == "activate"
    assert obj["status"]["operation"]
    assert cluster.kube.store.get("Namespace", "tenant-bluebird") is not None
    assert service.queries.get(cluster.session, "bluebird")["status"] == "active"

    cluster.kube.reset_requests()
    verdicts, _ = cluster.source.reconcile_all()
    assert [(v.tenant_id, v.action) for v in verdicts] == [("bluebird", "unchanged")]
    assert cluster.kube.writes() == []  # converged: status unchanged, nothing repaired


@pytest.mark.slow
def test_an_invalid_spec_is_reported_failed_and_nothing_is_onboarded(cluster: Cluster) -> None:
    cluster.create("bluebird", region="mars-north-1")
    verdicts, _ = cluster.source.reconcile_all()
    assert [(v.tenant_id, v.action, v.exit_code) for v in verdicts] == [("bluebird", "invalid", 2)]
    obj = cluster.read("bluebird")
    assert _conditions(obj)["Failed"] == "True"
    assert _conditions(obj)["Ready"] == "False"
    assert "tenants.tenantctl.io/bluebird" in obj["status"]["message"]
    assert "tenant.region" in obj["status"]["message"]
    assert cluster.kube.store.get("Namespace", "tenant-bluebird") is None


@pytest.mark.slow
def test_the_watch_loop_onboards_a_new_object_until_stopped(cluster: Cluster) -> None:
    store = cluster.kube.store

    def ready() -> bool:
        found = store.get("Tenant", "bluebird") or {}
        return bool(found.get("status")) and _conditions(found)["Ready"] == "True"

    stop = threading.Event()
    loop = threading.Thread(
        target=cluster.source.run, args=(stop,), kwargs={"resync": 600, "watch_seconds": 2}
    )
    loop.start()
    try:
        cluster.create("bluebird")
        with store.changed:
            assert store.changed.wait_for(ready, timeout=240)
    finally:
        stop.set()
        loop.join(timeout=60)
    assert not loop.is_alive()
    assert service.queries.get(cluster.session, "bluebird")["status"] == "active"


@pytest.mark.slow
def test_deleting_the_object_runs_the_delete_flow_through_the_finalizer(cluster: Cluster) -> None:
    cluster.create("bluebird")  # deletion_protection: false in its file
    cluster.source.reconcile_all()
    cluster.objects.delete_cluster_custom_object(GROUP, VERSION, PLURAL, "bluebird")
    held = cluster.read("bluebird")
    assert held["metadata"]["deletionTimestamp"]  # the finalizer holds it

    verdicts, _ = cluster.source.reconcile_all()
    assert [(v.tenant_id, v.action) for v in verdicts] == [("bluebird", "deleted")], verdicts
    assert cluster.kube.store.get("Tenant", "bluebird") is None
    row = service.queries.get(cluster.session, "bluebird")
    assert row["status"] == "deleted"
    assert row["purge_after"] is not None
    exports = service.offboarding.exports(cluster.session, "bluebird")
    assert exports and exports[0]["verified_at"] is not None


@pytest.mark.slow
def test_a_protected_tenant_keeps_its_object_until_protection_is_lifted(
    cluster: Cluster,
) -> None:
    cluster.create("bluebird", lifecycle={"deletion_protection": True, "retention_days": 7})
    cluster.source.reconcile_all()
    cluster.objects.delete_cluster_custom_object(GROUP, VERSION, PLURAL, "bluebird")
    verdicts, _ = cluster.source.reconcile_all()
    assert [(v.tenant_id, v.action, v.exit_code) for v in verdicts] == [("bluebird", "failed", 4)]
    held = cluster.read("bluebird")
    assert _conditions(held)["Failed"] == "True"
    assert "deletion_protection" in held["status"]["message"]
    assert service.queries.get(cluster.session, "bluebird")["status"] == "active"

    spec = {**held["spec"], "lifecycle": {"deletion_protection": False, "retention_days": 7}}
    cluster.objects.patch_cluster_custom_object(GROUP, VERSION, PLURAL, "bluebird", {"spec": spec})
    verdicts, _ = cluster.source.reconcile_all()
    assert [(v.tenant_id, v.action) for v in verdicts] == [("bluebird", "deleted")], verdicts
    assert cluster.kube.store.get("Tenant", "bluebird") is None
    assert service.queries.get(cluster.session, "bluebird")["status"] == "deleted"


@pytest.mark.slow
def test_the_reconcile_command_takes_tenant_objects(cluster: Cluster, tmp_path: Path) -> None:
    cluster.create("bluebird")
    platform = str(tmp_path / "tenant-configs" / "platform.yaml")
    args = ["reconcile", "--source", "kubernetes", "--platform", platform, "-o", "json"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert [(o["tenant"], o["result"]) for o in json.loads(result.stdout)] == [
        ("bluebird", "applied")
    ]
    assert _conditions(cluster.read("bluebird"))["Ready"] == "True"

    refused = CliRunner().invoke(app, [*args, str(tmp_path / "tenant-configs")])
    assert refused.exit_code == 2
    assert "reads Tenant objects" in refused.output


@pytest.mark.slow
def test_drift_of_an_observe_only_tenant_is_reported_drifted(cluster: Cluster) -> None:
    lifecycle = {"deletion_protection": False, "retention_days": 7, "management": "observe"}
    cluster.create("bluebird")
    cluster.source.reconcile_all()
    spec = {**cluster.read("bluebird")["spec"], "lifecycle": lifecycle}
    cluster.objects.patch_cluster_custom_object(GROUP, VERSION, PLURAL, "bluebird", {"spec": spec})
    cluster.source.reconcile_all()
    assert _conditions(cluster.read("bluebird"))["Drifted"] == "False"

    cluster.kube.store.remove("NetworkPolicy", "default-deny", "tenant-bluebird")
    verdicts, _ = cluster.source.reconcile_all()
    assert [(v.tenant_id, v.action) for v in verdicts] == [("bluebird", "drifted")], verdicts
    obj = cluster.read("bluebird")
    assert _conditions(obj)["Drifted"] == "True"
    assert "default-deny" in obj["status"]["message"]
    assert cluster.kube.store.get("NetworkPolicy", "default-deny", "tenant-bluebird") is None
