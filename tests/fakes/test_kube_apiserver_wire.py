"""Wire behaviour of the fake kube-apiserver: status codes, Status bodies, resourceVersions.

These tests speak raw HTTP (httpx) so that what they assert is exactly what a client sees.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakes.kube_fixtures import FakeCluster

APPLY = "application/apply-patch+yaml"
CM_PATH = "/api/v1/namespaces/team/configmaps"


@pytest.fixture
def http(kube_http: httpx.Client) -> httpx.Client:
    kube_http.post("/api/v1/namespaces", json={"metadata": {"name": "team"}})
    return kube_http


def configmap(name: str = "app", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def status_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert response.headers["content-type"] == "application/json"
    assert body["kind"] == "Status"
    assert body["code"] == response.status_code
    return dict(body)


@pytest.mark.parametrize(
    ("reason", "path", "want_keys"),
    [
        (
            "core versions need serverAddressByClientCIDRs",
            "/api",
            {"versions", "serverAddressByClientCIDRs"},
        ),
        ("trailing slash routes too", "/api/", {"versions"}),
        ("group list", "/apis", {"groups"}),
        ("core resources", "/api/v1", {"groupVersion", "resources"}),
        ("group resources", "/apis/security.istio.io/v1beta1", {"groupVersion", "resources"}),
        ("version", "/version", {"major", "minor", "gitVersion"}),
        ("openapi index", "/openapi/v3", {"paths"}),
    ],
)
def test_discovery_documents(
    http: httpx.Client, reason: str, path: str, want_keys: set[str]
) -> None:
    response = http.get(path)
    assert response.status_code == 200, reason
    assert want_keys <= set(response.json()), reason


def test_group_list_prefers_v1_for_istio_and_eso(http: httpx.Client) -> None:
    groups = {g["name"]: g for g in http.get("/apis").json()["groups"]}
    for name in ("security.istio.io", "external-secrets.io"):
        versions = [v["version"] for v in groups[name]["versions"]]
        assert groups[name]["preferredVersion"]["version"] == "v1"
        assert versions == ["v1", "v1beta1"]
    assert {"networking.k8s.io", "rbac.authorization.k8s.io", "scheduling.k8s.io", "policy"} <= set(
        groups
    )


def test_create_sets_server_fields_and_get_returns_them(http: httpx.Client) -> None:
    created = http.post(CM_PATH, json=configmap(a="1"))
    assert created.status_code == 201
    meta = created.json()["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["resourceVersion"].isdigit()
    assert "generation" not in meta
    assert http.get(f"{CM_PATH}/app").json() == created.json()


@pytest.mark.parametrize(
    ("reason", "method", "path", "body", "code", "want_reason", "want_message"),
    [
        (
            "get missing",
            "GET",
            f"{CM_PATH}/nope",
            None,
            404,
            "NotFound",
            'configmaps "nope" not found',
        ),
        (
            "grouped resource names its group",
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles/r",
            None,
            404,
            "NotFound",
            'roles.rbac.authorization.k8s.io "r" not found',
        ),
        (
            "missing namespace",
            "POST",
            "/api/v1/namespaces/ghost/configmaps",
            configmap(),
            404,
            "NotFound",
            'namespaces "ghost" not found',
        ),
        (
            "unknown path",
            "GET",
            "/apis/nothing.io/v1/things",
            None,
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
        (
            "name mismatch",
            "PUT",
            f"{CM_PATH}/other",
            configmap("app"),
            400,
            "BadRequest",
            "the name of the object (app) does not match the name on the URL (other)",
        ),
        (
            "invalid name",
            "POST",
            CM_PATH,
            configmap("Not_Valid"),
            422,
            "Invalid",
            'ConfigMap "Not_Valid" is invalid: metadata.name: Invalid value',
        ),
    ],
)
def test_error_status_bodies(  # noqa: PLR0917 - parametrized cases
    http: httpx.Client,
    reason: str,
    method: str,
    path: str,
    body: Any,
    code: int,
    want_reason: str,
    want_message: str,
) -> None:
    http.post(CM_PATH, json=configmap())
    response = http.request(method, path, json=body)
    status = status_of(response)
    assert response.status_code == code, reason
    assert status["reason"] == want_reason, reason
    assert status["message"].startswith(want_message), status["message"]


def test_create_twice_is_already_exists(http: httpx.Client) -> None:
    http.post(CM_PATH, json=configmap())
    status = status_of(http.post(CM_PATH, json=configmap()))
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'configmaps "app" already exists'
    assert status["details"] == {"name": "app", "kind": "configmaps"}


def test_stale_update_is_conflict_and_fresh_update_bumps_resource_version(
    http: httpx.Client,
) -> None:
    first = http.post(CM_PATH, json=configmap(a="1")).json()
    fresh = {**first, "data": {"a": "2"}}
    updated = http.put(f"{CM_PATH}/app", json=fresh)
    assert updated.status_code == 200
    assert int(updated.json()["metadata"]["resourceVersion"]) > int(
        first["metadata"]["resourceVersion"]
    )
    stale = http.put(f"{CM_PATH}/app", json={**first, "data": {"a": "3"}})
    status = status_of(stale)
    assert stale.status_code == 409
    assert status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]


def test_no_op_writes_keep_the_resource_version(http: httpx.Client) -> None:
    first = http.post(CM_PATH, json=configmap(a="1")).json()
    same = http.put(f"{CM_PATH}/app", json=first).json()
    patched = http.patch(
        f"{CM_PATH}/app",
        json={"data": {"a": "1"}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).json()
    assert same["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert patched["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_resource_version_is_one_cluster_wide_counter(http: httpx.Client) -> None:
    a = http.post(CM_PATH, json=configmap("a")).json()["metadata"]["resourceVersion"]
    b = http.post(CM_PATH, json=configmap("b")).json()["metadata"]["resourceVersion"]
    listed = http.get("/api/v1/configmaps").json()["metadata"]["resourceVersion"]
    assert int(a) < int(b) <= int(listed)


def test_delete_returns_success_status_then_not_found(http: httpx.Client) -> None:
    uid = http.post(CM_PATH, json=configmap()).json()["metadata"]["uid"]
    deleted = http.delete(f"{CM_PATH}/app").json()
    assert deleted["status"] == "Success"
    assert deleted["details"] == {"name": "app", "kind": "configmaps", "uid": uid}
    assert http.get(f"{CM_PATH}/app").status_code == 404


def test_lists_include_items_in_namespace_then_name_order(http: httpx.Client) -> None:
    http.post("/api/v1/namespaces", json={"metadata": {"name": "alpha"}})
    http.post(CM_PATH, json=configmap("zed"))
    http.post("/api/v1/namespaces/alpha/configmaps", json=configmap("zed"))
    listed = http.get("/api/v1/configmaps", params={"fieldSelector": "metadata.name=zed"}).json()
    assert listed["kind"] == "ConfigMapList"
    assert [i["metadata"]["namespace"] for i in listed["items"]] == ["alpha", "team"]
    empty = http.get(CM_PATH, params={"labelSelector": "nothing=here"}).json()
    assert empty["items"] == []


@pytest.mark.parametrize(
    ("reason", "selector", "want"),
    [
        ("equality", "tier=gold", ["gold"]),
        ("double equals", "tier==gold", ["gold"]),
        ("inequality matches objects lacking the key", "tier!=gold", ["bare", "silver"]),
        ("in", "tier in (gold,silver)", ["gold", "silver"]),
        ("notin matches objects lacking the key", "tier notin (gold)", ["bare", "silver"]),
        ("exists", "tier", ["gold", "silver"]),
        ("not exists", "!tier", ["bare"]),
        ("and of terms", "tier,team=a", ["gold"]),
        ("greater than", "size>5", ["silver"]),
    ],
)
def test_label_selectors(http: httpx.Client, reason: str, selector: str, want: list[str]) -> None:
    labels = {
        "gold": {"tier": "gold", "team": "a", "size": "1"},
        "silver": {"tier": "silver", "size": "10"},
        "bare": {},
    }
    for name, value in labels.items():
        http.post(CM_PATH, json={"metadata": {"name": name, "labels": value}})
    items = http.get(CM_PATH, params={"labelSelector": selector}).json()["items"]
    names = [i["metadata"]["name"] for i in items if i["metadata"]["name"] in labels]
    assert names == want, reason


def test_pagination_with_limit_and_continue(http: httpx.Client) -> None:
    for index in range(5):
        http.post(CM_PATH, json=configmap(f"c{index}"))
    first = http.get(CM_PATH, params={"limit": 3}).json()
    assert len(first["items"]) == 3
    rest = http.get(CM_PATH, params={"limit": 3, "continue": first["metadata"]["continue"]}).json()
    names = [i["metadata"]["name"] for i in first["items"] + rest["items"]]
    assert names == sorted(names)
    assert len(set(names)) == 6  # five configmaps plus kube-root-ca.crt
    assert not rest["metadata"].get("continue")


def test_wrong_token_is_unauthorized(kube_apiserver: FakeCluster) -> None:
    response = httpx.get(
        f"{kube_apiserver.url}/api/v1/namespaces",
        headers={"Authorization": "Bearer wrong"},
    )
    assert response.status_code == 401
    assert status_of(response)["reason"] == "Unauthorized"


def test_requests_are_recorded_and_writes_filtered(
    kube_apiserver: FakeCluster, http: httpx.Client
) -> None:
    kube_apiserver.reset_requests()
    http.post(CM_PATH, json=configmap())
    http.get(f"{CM_PATH}/app")
    writes = kube_apiserver.writes()
    assert [(w.method, w.path, w.status) for w in writes] == [("POST", CM_PATH, 201)]
    assert writes[0].body["metadata"]["name"] == "app"
    assert writes[0].content_type == "application/json"
    assert len(kube_apiserver.requests) == 2
