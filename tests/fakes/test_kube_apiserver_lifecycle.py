"""Patches, deletion, namespace termination, defaults and watches in the fake apiserver."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from tests.fakes.kube_fixtures import FakeCluster

NS = "/api/v1/namespaces"
CM = f"{NS}/team/configmaps/app"
SA = f"{NS}/team/serviceaccounts/app"
NETPOL = "/apis/networking.k8s.io/v1/namespaces/team/networkpolicies"
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@pytest.fixture
def http(kube_http: httpx.Client) -> httpx.Client:
    kube_http.post(NS, json={"metadata": {"name": "team"}})
    kube_http.post(
        f"{NS}/team/configmaps",
        json={"metadata": {"name": "app", "labels": {"a": "1"}}, "data": {"x": "1", "y": "2"}},
    )
    kube_http.post(
        f"{NS}/team/serviceaccounts",
        json={"metadata": {"name": "app"}, "secrets": [{"name": "s1"}, {"name": "s2"}]},
    )
    return kube_http


def patch(http: httpx.Client, path: str, body: Any, content_type: str) -> httpx.Response:
    return http.patch(path, content=json.dumps(body), headers={"Content-Type": content_type})


@pytest.mark.parametrize(
    ("reason", "path", "content_type", "body", "want"),
    [
        (
            "merge patch: maps merge and null deletes",
            CM,
            MERGE,
            {"data": {"x": None, "z": "3"}},
            {"data": {"y": "2", "z": "3"}},
        ),
        (
            "strategic merge: maps merge",
            CM,
            STRATEGIC,
            {"data": {"z": "3"}, "metadata": {"labels": {"a": None}}},
            {"data": {"x": "1", "y": "2", "z": "3"}},
        ),
        (
            "strategic merge: list with merge key merges by name",
            SA,
            STRATEGIC,
            {"secrets": [{"name": "s3"}]},
            {"secrets": [{"name": "s1"}, {"name": "s2"}, {"name": "s3"}]},
        ),
        (
            "strategic merge: $patch delete removes one item",
            SA,
            STRATEGIC,
            {"secrets": [{"name": "s1", "$patch": "delete"}]},
            {"secrets": [{"name": "s2"}]},
        ),
        (
            "merge patch: lists are replaced",
            SA,
            MERGE,
            {"secrets": [{"name": "s3"}]},
            {"secrets": [{"name": "s3"}]},
        ),
        (
            "json patch: add, replace, remove",
            CM,
            JSON_PATCH,
            [
                {"op": "add", "path": "/data/z", "value": "3"},
                {"op": "replace", "path": "/data/x", "value": "9"},
                {"op": "remove", "path": "/data/y"},
            ],
            {"data": {"x": "9", "z": "3"}},
        ),
    ],
)
def test_patch_types(  # noqa: PLR0917 - parametrized cases
    http: httpx.Client, reason: str, path: str, content_type: str, body: Any, want: dict[str, Any]
) -> None:
    response = patch(http, path, body, content_type)
    assert response.status_code == 200, response.text
    result = response.json()
    for key, value in want.items():
        assert result[key] == value, reason


def test_strategic_merge_removes_labels_with_null(http: httpx.Client) -> None:
    result = patch(http, CM, {"metadata": {"labels": {"a": None}}}, STRATEGIC).json()
    assert "labels" not in result["metadata"]


def test_failing_json_patch_test_is_invalid(http: httpx.Client) -> None:
    body = [{"op": "test", "path": "/data/x", "value": "nope"}]
    response = patch(http, CM, body, JSON_PATCH)
    assert response.status_code == 422
    assert response.json()["reason"] == "Invalid"


def test_strategic_merge_on_a_custom_resource_is_unsupported(http: httpx.Client) -> None:
    path = "/apis/security.istio.io/v1/namespaces/team/peerauthentications"
    http.post(path, json={"metadata": {"name": "default"}, "spec": {"mtls": {"mode": "STRICT"}}})
    response = patch(http, f"{path}/default", {"spec": {}}, STRATEGIC)
    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"
    assert patch(http, f"{path}/default", {"spec": {"mtls": None}}, MERGE).status_code == 200


def test_patch_of_missing_object_is_not_found(http: httpx.Client) -> None:
    response = patch(http, f"{NS}/team/configmaps/ghost", {"data": {}}, MERGE)
    assert response.status_code == 404
    assert response.json()["message"] == 'configmaps "ghost" not found'


def test_unsupported_verb_is_method_not_allowed(http: httpx.Client) -> None:
    response = http.put(f"{NS}/team/configmaps", json={})
    assert response.status_code == 405
    assert response.json()["reason"] == "MethodNotAllowed"


def test_namespace_gets_server_defaults(http: httpx.Client) -> None:
    namespace = http.get(f"{NS}/team").json()
    assert namespace["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    assert namespace["spec"] == {"finalizers": ["kubernetes"]}
    assert namespace["status"] == {"phase": "Active"}
    names = [i["metadata"]["name"] for i in http.get(f"{NS}/team/serviceaccounts").json()["items"]]
    assert "default" in names


@pytest.mark.parametrize(
    ("reason", "spec", "want_types", "want_protocol"),
    [
        ("ingress only", {"podSelector": {}, "ingress": [{}]}, ["Ingress"], None),
        (
            "egress rules add Egress and default the port protocol",
            {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]},
            ["Ingress", "Egress"],
            "TCP",
        ),
        (
            "explicit types are kept",
            {"podSelector": {}, "policyTypes": ["Egress"]},
            ["Egress"],
            None,
        ),
    ],
)
def test_network_policy_defaults(
    http: httpx.Client,
    reason: str,
    spec: dict[str, Any],
    want_types: list[str],
    want_protocol: str | None,
) -> None:
    created = http.post(NETPOL, json={"metadata": {"name": "p"}, "spec": spec}).json()
    assert created["spec"]["policyTypes"] == want_types, reason
    assert created["metadata"]["generation"] == 1
    if want_protocol:
        assert created["spec"]["egress"][0]["ports"][0]["protocol"] == want_protocol


def test_namespace_deletion_terminates_then_disappears(
    kube_apiserver: FakeCluster, http: httpx.Client
) -> None:
    deleted = http.delete(f"{NS}/team")
    assert deleted.status_code == 200
    body = deleted.json()
    assert body["kind"] == "Namespace"
    assert body["status"]["phase"] == "Terminating"
    assert body["metadata"]["deletionTimestamp"]
    assert body["spec"]["finalizers"] == ["kubernetes"]
    assert http.get(f"{NS}/team").json()["status"]["phase"] == "Terminating"
    refused = http.post(f"{NS}/team/configmaps", json={"metadata": {"name": "late"}})
    assert refused.status_code == 403
    assert refused.json()["message"] == (
        'configmaps "late" is forbidden: unable to create new content in namespace team '
        "because it is being terminated"
    )
    assert refused.json()["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    again = http.delete(f"{NS}/team")
    assert again.status_code == 409
    assert "The system is ensuring all content is removed" in again.json()["message"]
    deadline = time.monotonic() + 5
    while http.get(f"{NS}/team").status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert http.get(f"{NS}/team").status_code == 404
    assert kube_apiserver.store.objects("ConfigMap", "team") == []


def test_objects_with_finalizers_wait_for_them(http: httpx.Client) -> None:
    http.post(f"{NS}/team/configmaps", json={"metadata": {"name": "held", "finalizers": ["x/y"]}})
    held = http.delete(f"{NS}/team/configmaps/held").json()
    assert held["kind"] == "ConfigMap"
    assert held["metadata"]["deletionTimestamp"]
    assert http.get(f"{NS}/team/configmaps/held").status_code == 200
    patch(http, f"{NS}/team/configmaps/held", {"metadata": {"finalizers": None}}, MERGE)
    assert http.get(f"{NS}/team/configmaps/held").status_code == 404


def test_delete_collection_by_label(http: httpx.Client) -> None:
    http.post(f"{NS}/team/configmaps", json={"metadata": {"name": "b", "labels": {"a": "1"}}})
    response = http.delete(f"{NS}/team/configmaps", params={"labelSelector": "a=1"})
    assert response.status_code == 200
    assert sorted(i["metadata"]["name"] for i in response.json()["items"]) == ["app", "b"]
    left = [i["metadata"]["name"] for i in http.get(f"{NS}/team/configmaps").json()["items"]]
    assert left == ["kube-root-ca.crt"]


def test_dry_run_delete_keeps_the_object(http: httpx.Client) -> None:
    assert http.delete(CM, params={"dryRun": "All"}).status_code == 200
    assert http.get(CM).status_code == 200
    bad = http.delete(CM, params={"dryRun": "Some"})
    assert bad.status_code == 422


def test_watch_streams_changes(kube_apiserver: FakeCluster, http: httpx.Client) -> None:
    start_rv = http.get(f"{NS}/team/configmaps").json()["metadata"]["resourceVersion"]
    events: list[dict[str, Any]] = []

    def watch() -> None:
        params = {"watch": "true", "resourceVersion": start_rv, "timeoutSeconds": "2"}
        with http.stream("GET", f"{NS}/team/configmaps", params=params) as stream:
            for line in stream.iter_lines():
                events.append(json.loads(line))
                if len(events) == 2:
                    return

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(0.1)
    patch(http, CM, {"data": {"x": "changed"}}, MERGE)
    http.delete(CM)
    watcher.join(timeout=5)
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert events[0]["object"]["data"]["x"] == "changed"
    assert events[0]["object"]["kind"] == "ConfigMap"
    assert kube_apiserver.requests[-1].method == "DELETE"


@pytest.mark.parametrize(
    ("reason", "validation", "want_code", "want_warning"),
    [
        ("default Warn drops the field and warns", None, 201, True),
        ("Ignore drops it silently", "Ignore", 201, False),
        ("Strict refuses it", "Strict", 400, False),
    ],
)
def test_unknown_fields_follow_field_validation(
    http: httpx.Client, reason: str, validation: str | None, want_code: int, want_warning: bool
) -> None:
    params = {"fieldValidation": validation} if validation else {}
    body = {"metadata": {"name": "p"}, "spec": {"podSelector": {}, "podSelectr": {}}}
    response = http.post(NETPOL, json=body, params=params)
    assert response.status_code == want_code, reason
    assert ("warning" in response.headers) == want_warning, reason
    if want_code == 201:
        assert "podSelectr" not in response.json()["spec"]
    else:
        assert (
            'strict decoding error: unknown field "spec.podSelectr"' in response.json()["message"]
        )


def test_custom_resources_are_pruned_to_their_schema(http: httpx.Client) -> None:
    path = "/apis/security.istio.io/v1/namespaces/team/peerauthentications"
    body = {"metadata": {"name": "d"}, "spec": {"mtls": {"mode": "STRICT", "bogus": 1}}}
    created = http.post(path, json=body).json()
    assert created["spec"] == {"mtls": {"mode": "STRICT"}}


def test_secret_string_data_is_folded_into_data_and_reapply_is_a_no_op(
    http: httpx.Client,
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "team"},
        "stringData": {"password": "s3cret"},
    }
    params = {"fieldManager": "tenantctl"}
    headers = {"Content-Type": "application/apply-patch+yaml"}
    path = f"{NS}/team/secrets/db"
    first = http.patch(path, json=secret, params=params, headers=headers).json()
    assert first["data"] == {"password": "czNjcmV0"}
    assert first["type"] == "Opaque"
    assert "stringData" not in first
    second = http.patch(path, json=secret, params=params, headers=headers).json()
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_quantities_are_stored_in_canonical_form_and_reapply_is_a_no_op(
    http: httpx.Client,
) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q", "namespace": "team"},
        "spec": {"hard": {"requests.cpu": "1000m", "requests.memory": "1024Mi", "pods": 10}},
    }
    params = {"fieldManager": "tenantctl"}
    headers = {"Content-Type": "application/apply-patch+yaml"}
    path = f"{NS}/team/resourcequotas/q"
    first = http.patch(path, json=quota, params=params, headers=headers).json()
    assert first["spec"]["hard"] == {"requests.cpu": "1", "requests.memory": "1Gi", "pods": "10"}
    second = http.patch(path, json=quota, params=params, headers=headers).json()
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_limit_range_defaults_are_filled_per_resource(http: httpx.Client) -> None:
    limits = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "l", "namespace": "team"},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "max": {"cpu": "4", "memory": "1Gi"},
                    "default": {"cpu": "1"},
                    "min": {"ephemeral-storage": "1Gi"},
                }
            ]
        },
    }
    created = http.post(f"{NS}/team/limitranges", json=limits).json()
    (item,) = created["spec"]["limits"]
    assert item["default"] == {"cpu": "1", "memory": "1Gi"}
    assert item["defaultRequest"] == {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"}


def test_a_false_priority_class_global_default_is_not_stored(http: httpx.Client) -> None:
    # PriorityClass.globalDefault is a plain bool with omitempty: false never reads back.
    klass = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "tier"},
        "value": 1000,
        "globalDefault": False,
    }
    params = {"fieldManager": "tenantctl"}
    headers = {"Content-Type": "application/apply-patch+yaml"}
    path = "/apis/scheduling.k8s.io/v1/priorityclasses/tier"
    first = http.patch(path, json=klass, params=params, headers=headers).json()
    assert "globalDefault" not in first
    assert first["preemptionPolicy"] == "PreemptLowerPriority"
    second = http.patch(path, json=klass, params=params, headers=headers).json()
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    marked = http.patch(path, json={**klass, "globalDefault": True}, params=params, headers=headers)
    assert marked.json()["globalDefault"] is True


@pytest.mark.parametrize(
    ("reason", "path", "original", "patch_body", "want_message"),
    [
        (
            "roleRef cannot change",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings",
            {
                "metadata": {"name": "x"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "a"},
            },
            {"roleRef": {"name": "b"}},
            'RoleBinding.rbac.authorization.k8s.io "x" is invalid: roleRef: Invalid value: ',
        ),
        (
            "priority value cannot change",
            "/apis/scheduling.k8s.io/v1/priorityclasses",
            {"metadata": {"name": "x"}, "value": 100},
            {"value": 200},
            'PriorityClass.scheduling.k8s.io "x" is invalid: value: Forbidden: '
            "may not be changed in an update.",
        ),
        (
            "immutable configmap data",
            f"{NS}/team/configmaps",
            {"metadata": {"name": "x"}, "data": {"a": "1"}, "immutable": True},
            {"data": {"a": "2"}},
            'ConfigMap "x" is invalid: data: Forbidden: ',
        ),
    ],
)
def test_immutable_fields_are_refused(  # noqa: PLR0917 - parametrized cases
    http: httpx.Client,
    reason: str,
    path: str,
    original: dict[str, Any],
    patch_body: dict[str, Any],
    want_message: str,
) -> None:
    assert http.post(path, json=original).status_code == 201, reason
    response = patch(http, f"{path}/x", patch_body, MERGE)
    assert response.status_code == 422, reason
    assert response.json()["message"].startswith(want_message), response.json()["message"]


def test_watch_from_a_forgotten_resource_version_is_expired(
    kube_apiserver: FakeCluster, http: httpx.Client
) -> None:
    kube_apiserver.store.event_log_size = 2
    old = http.get(f"{NS}/team/configmaps").json()["metadata"]["resourceVersion"]
    for index in range(4):
        http.post(f"{NS}/team/configmaps", json={"metadata": {"name": f"c{index}"}})
    params = {"watch": "true", "resourceVersion": old, "timeoutSeconds": "1"}
    with http.stream("GET", f"{NS}/team/configmaps", params=params) as stream:
        events = [json.loads(line) for line in stream.iter_lines()]
    assert [e["type"] for e in events] == ["ERROR"]
    assert events[0]["object"]["code"] == 410
    assert events[0]["object"]["reason"] == "Expired"
