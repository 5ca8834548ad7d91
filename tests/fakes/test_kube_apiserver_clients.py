"""The real clients against the fake: the official Python client and kubectl 1.32."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic, watch
from kubernetes.client.exceptions import ApiException

from tests.fakes.kube_fixtures import FakeCluster

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata:
  name: acme
  labels:
    tenant: acme
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: acme
  labels:
    tenant: acme
data:
  color: blue
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: acme
spec:
  mtls:
    mode: STRICT
"""


def namespace(name: str) -> client.V1Namespace:
    return client.V1Namespace(metadata=client.V1ObjectMeta(name=name))


def kubectl(cluster: FakeCluster, *args: str) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, *cluster.kubectl_args(), *args],
        capture_output=True,
        text=True,
        env=cluster.kubectl_env(),
        timeout=60,
        check=False,
    )


def test_typed_client_crud_and_errors(kube_apiserver: FakeCluster) -> None:
    core = client.CoreV1Api(kube_apiserver.api_client())
    core.create_namespace(namespace("acme"))
    config_map = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"), data={"k": "v"})
    made = core.create_namespaced_config_map("acme", config_map).to_dict()
    assert made["metadata"]["managed_fields"][0]["manager"] == "OpenAPI-Generator"
    labels = core.read_namespace("acme").to_dict()["metadata"]["labels"]
    assert labels == {"kubernetes.io/metadata.name": "acme"}
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("nope", "acme")
    assert missing.value.status == 404
    listed = core.list_config_map_for_all_namespaces().to_dict()["items"]
    names = [i["metadata"]["name"] for i in listed]
    assert "c" in names


def test_dynamic_client_server_side_apply(kube_apiserver: FakeCluster) -> None:
    dyn = dynamic.DynamicClient(kube_apiserver.api_client())  # type: ignore[no-untyped-call]
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    policies = dyn.resources.get(api_version="security.istio.io/v1", kind="AuthorizationPolicy")
    namespaces.server_side_apply(
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "acme"}},
        field_manager="tenantctl",
    )
    body: dict[str, Any] = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "allow-own", "namespace": "acme"},
        "spec": {"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": ["acme"]}}]}]},
    }
    applied = policies.server_side_apply(body=body, namespace="acme", field_manager="tenantctl")
    assert applied.metadata.generation == 1
    fields = applied.to_dict()["metadata"]["managedFields"][0]["fieldsV1"]
    assert fields == {"f:spec": {"f:action": {}, "f:rules": {}}}
    body["spec"]["action"] = "DENY"
    with pytest.raises(dynamic.exceptions.ConflictError):
        policies.server_side_apply(body=body, namespace="acme", field_manager="other")
    forced = policies.server_side_apply(
        body=body, namespace="acme", field_manager="other", force_conflicts=True
    )
    assert forced.spec.action == "DENY"


def test_typed_patch_with_apply_content_type(kube_apiserver: FakeCluster) -> None:
    core = client.CoreV1Api(kube_apiserver.api_client())
    core.create_namespace(namespace("acme"))
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    result = core.patch_namespaced_config_map(
        "c",
        "acme",
        body,
        field_manager="tenantctl",
        force=True,
        _content_type="application/apply-patch+yaml",
    )
    assert result.data == {"a": "1"}
    write = kube_apiserver.writes()[-1]
    assert write.content_type == "application/apply-patch+yaml"
    assert write.query == {"fieldManager": "tenantctl", "force": "true"}
    assert write.body["data"] == {"a": "1"}


def test_premium_cluster_is_independent(kube_apiserver: FakeCluster) -> None:
    premium = kube_apiserver.premium
    assert premium is not None
    client.CoreV1Api(premium.api_client()).create_namespace(namespace("vip"))
    assert premium.store.get("Namespace", "vip") is not None
    assert kube_apiserver.store.get("Namespace", "vip") is None
    assert premium.url != kube_apiserver.url


@needs_kubectl
def test_kubectl_apply_diff_get_and_delete(kube_apiserver: FakeCluster, tmp_path: Path) -> None:
    manifest = tmp_path / "acme.yaml"
    manifest.write_text(MANIFESTS)
    applied = kubectl(kube_apiserver, "apply", "--server-side", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr
    assert "peerauthentication.security.istio.io/default serverside-applied" in applied.stdout
    same = kubectl(kube_apiserver, "diff", "--server-side", "-f", str(manifest))
    assert (same.returncode, same.stdout) == (0, "")
    manifest.write_text(MANIFESTS.replace("color: blue", "color: red"))
    changed = kubectl(kube_apiserver, "diff", "--server-side", "-f", str(manifest))
    assert changed.returncode == 1
    assert "-  color: blue\n+  color: red" in changed.stdout
    listed = kubectl(kube_apiserver, "get", "cm", "-A", "-l", "tenant=acme", "-o", "name")
    assert listed.stdout.split() == ["configmap/settings"]
    started = time.monotonic()
    deleted = kubectl(kube_apiserver, "delete", "ns", "acme")
    assert deleted.returncode == 0, deleted.stderr
    assert time.monotonic() - started >= 0.1  # it waited for the namespace to terminate
    assert kube_apiserver.store.get("Namespace", "acme") is None
    assert kube_apiserver.store.objects("ConfigMap", "acme") == []


@needs_kubectl
def test_kubectl_apply_conflict_and_premium_context(
    kube_apiserver: FakeCluster, tmp_path: Path
) -> None:
    manifest = tmp_path / "acme.yaml"
    manifest.write_text(MANIFESTS)
    assert kubectl(kube_apiserver, "apply", "--server-side", "-f", str(manifest)).returncode == 0
    manifest.write_text(MANIFESTS.replace("color: blue", "color: red"))
    conflict = kubectl(
        kube_apiserver, "apply", "--server-side", "--field-manager", "other", "-f", str(manifest)
    )
    assert conflict.returncode == 1
    assert 'conflict with "kubectl"' in conflict.stderr
    premium = kube_apiserver.premium
    assert premium is not None
    on_premium = kubectl(premium, "apply", "--server-side", "-f", str(manifest))
    assert on_premium.returncode == 0, on_premium.stderr
    assert premium.store.get("ConfigMap", "settings", "acme") is not None


EXAMPLES: list[dict[str, Any]] = [
    {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q"},
        "spec": {"hard": {"pods": 10, "requests.memory": "2048Mi"}},
    },
    {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "l"},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]},
    },
    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}},
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}},
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "r"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "rb"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "acme"}],
    },
    {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "pdb"},
        "spec": {"minAvailable": 1},
    },
]


def test_typed_client_deserialises_every_managed_kind(kube_apiserver: FakeCluster) -> None:
    api = kube_apiserver.api_client()
    dyn = dynamic.DynamicClient(api)  # type: ignore[no-untyped-call]
    client.CoreV1Api(api).create_namespace(namespace("acme"))
    for example in EXAMPLES:
        resource = dyn.resources.get(api_version=example["apiVersion"], kind=example["kind"])
        body = {**example, "metadata": {**example["metadata"], "namespace": "acme"}}
        resource.server_side_apply(body=body, namespace="acme", field_manager="tenantctl")
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    quota = core.read_namespaced_resource_quota("q", "acme").to_dict()
    assert quota["spec"]["hard"] == {"pods": "10", "requests.memory": "2Gi"}
    limits = core.list_namespaced_limit_range("acme").to_dict()["items"][0]["spec"]["limits"]
    assert limits[0]["default_request"] == {"cpu": "500m"}
    assert core.read_namespaced_secret("s", "acme").to_dict()["data"] == {"k": "dg=="}
    assert len(core.list_namespaced_service_account("acme").to_dict()["items"]) == 2
    assert rbac.read_namespaced_role_binding("rb", "acme").to_dict()["role_ref"]["name"] == "r"
    assert rbac.list_namespaced_role("acme").to_dict()["items"][0]["rules"][0]["verbs"] == ["get"]
    policies = client.NetworkingV1Api(api).list_network_policy_for_all_namespaces().to_dict()
    assert policies["items"][0]["metadata"]["generation"] == 1
    pdb = client.PolicyV1Api(api).read_namespaced_pod_disruption_budget("pdb", "acme").to_dict()
    assert pdb["spec"]["min_available"] == 1
    classes = client.SchedulingV1Api(api).list_priority_class().to_dict()
    assert classes["items"] == []
    custom: Any = client.CustomObjectsApi(api).list_cluster_custom_object(
        "security.istio.io", "v1", "peerauthentications"
    )
    assert custom["items"] == []


def test_python_watch_sees_a_namespace_terminate_then_go(kube_apiserver: FakeCluster) -> None:
    core = client.CoreV1Api(kube_apiserver.api_client())
    core.create_namespace(namespace("acme"))
    since = core.list_namespace().to_dict()["metadata"]["resource_version"]
    core.delete_namespace("acme")
    seen: list[tuple[str, str]] = []
    stream = watch.Watch()  # type: ignore[no-untyped-call]
    for event in stream.stream(  # type: ignore[no-untyped-call]
        core.list_namespace,
        field_selector="metadata.name=acme",
        resource_version=since,
        timeout_seconds=5,
    ):
        seen.append((event["type"], event["object"].to_dict()["status"]["phase"]))
        if event["type"] == "DELETED":
            stream.stop()  # type: ignore[no-untyped-call]
    assert seen == [("MODIFIED", "Terminating"), ("DELETED", "Terminating")]
