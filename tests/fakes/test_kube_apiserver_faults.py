"""Injected failures and subresources of the fake apiserver."""

from __future__ import annotations

import json

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.fakes.kube_fixtures import FakeCluster

NS = "/api/v1/namespaces"


@pytest.fixture
def http(kube_http: httpx.Client) -> httpx.Client:
    kube_http.post(NS, json={"metadata": {"name": "team"}})
    return kube_http


def test_injected_transient_failure_fires_the_given_number_of_times(
    kube_apiserver: FakeCluster, http: httpx.Client
) -> None:
    kube_apiserver.faults.fail(503, method="POST", times=2, retry_after=1)
    body = {"metadata": {"name": "c"}}
    codes = [http.post(f"{NS}/team/configmaps", json=body).status_code for _ in range(3)]
    assert codes == [503, 503, 201]
    assert [r.status for r in kube_apiserver.writes()][-3:] == [503, 503, 201]


def test_injected_failure_carries_retry_after_and_a_status(
    kube_apiserver: FakeCluster, http: httpx.Client
) -> None:
    kube_apiserver.faults.fail(429, path_contains="/configmaps", retry_after=3)
    response = http.get(f"{NS}/team/configmaps")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["reason"] == "TooManyRequests"
    assert http.get(f"{NS}/team/configmaps").status_code == 200


def test_rbac_denial_for_one_verb_and_resource(
    kube_apiserver: FakeCluster, http: httpx.Client
) -> None:
    assert http.get(f"{NS}/team").status_code == 200
    kube_apiserver.faults.deny("create", "secrets", namespace="team")
    core = client.CoreV1Api(kube_apiserver.api_client())
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="s"))
    with pytest.raises(ApiException) as denied:
        core.create_namespaced_secret("team", secret)
    assert denied.value.status == 403
    message = json.loads(str(denied.value.body))["message"]
    assert message == (
        'secrets is forbidden: User "system:serviceaccount:tenantctl:tenantctl" cannot create '
        'resource "secrets" in API group "" in the namespace "team"'
    )
    config_map = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"))
    assert core.create_namespaced_config_map("team", config_map) is not None
    kube_apiserver.faults.clear()
    assert core.create_namespaced_secret("team", secret) is not None


def test_status_subresource_writes_only_the_status(http: httpx.Client) -> None:
    path = "/apis/external-secrets.io/v1/namespaces/team/externalsecrets"
    body = {"metadata": {"name": "db"}, "spec": {"refreshInterval": "1h"}, "status": {"x": 1}}
    created = http.post(path, json=body).json()
    assert "status" not in created
    patched = http.patch(
        f"{path}/db/status",
        json={"status": {"refreshTime": "2025-01-01T00:00:00Z"}, "spec": {"refreshInterval": "9h"}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).json()
    assert patched["status"] == {"refreshTime": "2025-01-01T00:00:00Z"}
    assert patched["spec"]["refreshInterval"] == "1h"
    assert patched["metadata"]["generation"] == 1
