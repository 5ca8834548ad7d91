"""Server-side apply in the fake: managedFields, conflicts, force, pruning, dry-run."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakes.kube_fixtures import FakeCluster

APPLY = "application/apply-patch+yaml"
CM = "/api/v1/namespaces/team/configmaps/app"


@pytest.fixture
def http(kube_http: httpx.Client) -> httpx.Client:
    kube_http.post("/api/v1/namespaces", json={"metadata": {"name": "team"}})
    return kube_http


def apply(
    http: httpx.Client, body: dict[str, Any], manager: str, path: str = CM, **params: str
) -> httpx.Response:
    return http.patch(
        path,
        json=body,
        params={"fieldManager": manager, **params},
        headers={"Content-Type": APPLY},
    )


def cm(labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "app", "namespace": "team"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"]["managedFields"]}


def test_apply_creates_with_201_and_records_the_applied_fields(http: httpx.Client) -> None:
    response = apply(http, cm({"team": "a"}, key="v"), "tenantctl")
    assert response.status_code == 201
    assert managers(response.json()) == {
        ("tenantctl", "Apply"): {
            "f:data": {"f:key": {}},
            "f:metadata": {"f:labels": {"f:team": {}}},
        }
    }


def test_reapply_is_a_no_op(http: httpx.Client) -> None:
    first = apply(http, cm(key="v"), "tenantctl").json()
    second = apply(http, cm(key="v"), "tenantctl")
    assert second.status_code == 200
    assert second.json() == first


def test_conflict_with_another_applier_lists_field_and_manager(http: httpx.Client) -> None:
    apply(http, cm(key="v", other="o"), "tenantctl")
    response = apply(http, cm(key="changed"), "intruder")
    body = response.json()
    assert response.status_code == 409
    assert body["reason"] == "Conflict"
    assert body["message"] == 'Apply failed with 1 conflict: conflict with "tenantctl": .data.key'
    assert body["details"] == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "tenantctl"',
                "field": ".data.key",
            }
        ]
    }


def test_several_conflicts_are_listed_per_manager(http: httpx.Client) -> None:
    apply(http, cm({"l": "1"}, a="1", b="2"), "tenantctl")
    response = apply(http, cm({"l": "x"}, a="x", b="y"), "intruder")
    message = response.json()["message"]
    assert message == (
        'Apply failed with 3 conflicts: conflicts with "tenantctl":\n'
        "- .data.a\n- .data.b\n- .metadata.labels.l"
    )


def test_conflict_with_an_update_manager_names_its_version_and_time(http: httpx.Client) -> None:
    apply(http, cm(key="v"), "tenantctl")
    http.patch(
        CM,
        json={"data": {"key": "edited"}},
        params={"fieldManager": "kubectl-edit"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    message = apply(http, cm(key="v"), "tenantctl").json()["message"]
    assert message.startswith(
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using v1 at 20'
    )
    assert message.endswith(": .data.key")


def test_same_value_is_shared_without_conflict(http: httpx.Client) -> None:
    apply(http, cm(key="v"), "tenantctl")
    response = apply(http, cm(key="v"), "other")
    assert response.status_code == 200
    owners = managers(response.json())
    assert owners[("tenantctl", "Apply")] == owners[("other", "Apply")] == {"f:data": {"f:key": {}}}


def test_force_takes_ownership(http: httpx.Client) -> None:
    apply(http, cm(key="v", keep="k"), "tenantctl")
    forced = apply(http, cm(key="mine"), "intruder", force="true").json()
    assert forced["data"] == {"key": "mine", "keep": "k"}
    owners = managers(forced)
    assert owners[("tenantctl", "Apply")] == {"f:data": {"f:keep": {}}}
    assert owners[("intruder", "Apply")] == {"f:data": {"f:key": {}}}


def test_fields_no_longer_applied_are_removed_unless_owned_by_others(http: httpx.Client) -> None:
    apply(http, cm({"gone": "1", "shared": "s"}, a="1", b="2"), "tenantctl")
    apply(http, cm({"shared": "s"}), "other")
    after = apply(http, cm(a="1"), "tenantctl").json()
    assert after["data"] == {"a": "1"}
    assert after["metadata"]["labels"] == {"shared": "s"}


def test_update_takes_ownership_of_changed_fields(http: httpx.Client) -> None:
    apply(http, cm(a="1", b="2"), "tenantctl")
    edited = http.patch(
        CM,
        json={"data": {"a": "edited"}},
        params={"fieldManager": "kubectl-edit"},
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    ).json()
    owners = managers(edited)
    assert owners[("kubectl-edit", "Update")] == {"f:data": {"f:a": {}}}
    assert owners[("tenantctl", "Apply")] == {"f:data": {"f:b": {}}}


def test_apply_without_field_manager_is_invalid(http: httpx.Client) -> None:
    response = http.patch(CM, json=cm(a="1"), headers={"Content-Type": APPLY})
    assert response.status_code == 422
    assert response.json()["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
        "is required for apply patch"
    )


def test_force_on_a_merge_patch_is_invalid(http: httpx.Client) -> None:
    apply(http, cm(a="1"), "tenantctl")
    response = http.patch(
        CM,
        json={"data": {"a": "2"}},
        params={"force": "true", "fieldManager": "x"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 422
    assert (
        "force: Forbidden: may not be specified for non-apply patch" in response.json()["message"]
    )


def test_dry_run_apply_persists_nothing(kube_apiserver: FakeCluster, http: httpx.Client) -> None:
    created = apply(http, cm(a="1"), "tenantctl").json()
    dry = apply(http, cm(a="2"), "tenantctl", dryRun="All").json()
    assert dry["data"] == {"a": "2"}
    assert dry["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    stored = kube_apiserver.store.get("ConfigMap", "app", "team")
    assert stored is not None
    assert stored["data"] == {"a": "1"}


def test_dry_run_create_has_no_resource_version(http: httpx.Client) -> None:
    dry = apply(http, cm(a="1"), "tenantctl", dryRun="All")
    assert dry.status_code == 201
    assert "resourceVersion" not in dry.json()["metadata"]
    assert dry.json()["metadata"]["uid"]
    assert http.get(CM).status_code == 404


def test_store_edit_plays_another_manager(kube_apiserver: FakeCluster, http: httpx.Client) -> None:
    apply(http, cm(a="1"), "tenantctl")

    def change(obj: dict[str, Any]) -> None:
        obj["data"]["a"] = "manual"

    kube_apiserver.store.edit("ConfigMap", "app", "team", change=change)
    response = apply(http, cm(a="1"), "tenantctl")
    assert response.status_code == 409
    forced = apply(http, cm(a="1"), "tenantctl", force="true").json()
    assert forced["data"] == {"a": "1"}
    assert ("kubectl-edit", "Update") not in managers(forced)


def test_atomic_lists_are_one_leaf(http: httpx.Client) -> None:
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "rb", "namespace": "team"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "team"}],
    }
    path = "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings/rb"
    created = apply(http, binding, "tenantctl", path=path).json()
    assert managers(created)[("tenantctl", "Apply")] == {"f:roleRef": {}, "f:subjects": {}}
    changed = {**binding, "subjects": [{"kind": "User", "name": "bob"}]}
    conflict = apply(http, changed, "other", path=path).json()
    assert conflict["details"]["causes"][0]["field"] == ".subjects"


def test_generation_tracks_spec_changes_only(http: httpx.Client) -> None:
    path = "/apis/security.istio.io/v1/namespaces/team/peerauthentications/default"
    body: dict[str, Any] = {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": "team"},
        "spec": {"mtls": {"mode": "STRICT"}},
    }
    first = apply(http, body, "tenantctl", path=path).json()["metadata"]
    labelled = {**body, "metadata": {**body["metadata"], "labels": {"a": "b"}}}
    second = apply(http, labelled, "tenantctl", path=path).json()["metadata"]
    changed = {**labelled, "spec": {"mtls": {"mode": "PERMISSIVE"}}}
    third = apply(http, changed, "tenantctl", path=path).json()["metadata"]
    assert (first["generation"], second["generation"], third["generation"]) == (1, 1, 2)
    assert first["resourceVersion"] != second["resourceVersion"] != third["resourceVersion"]


def test_apply_over_a_created_object_conflicts_with_the_creator(http: httpx.Client) -> None:
    http.post(
        "/api/v1/namespaces/team/configmaps",
        json={"metadata": {"name": "app"}, "data": {"a": "1"}},
        params={"fieldManager": "kubectl-create"},
    )
    shared = apply(http, cm(a="1"), "tenantctl")
    assert shared.status_code == 200
    assert set(managers(shared.json())) == {("kubectl-create", "Update"), ("tenantctl", "Apply")}
    message = apply(http, cm(a="2"), "tenantctl").json()["message"]
    assert 'conflict with "kubectl-create" using v1 at ' in message
    after = apply(http, cm(b="2"), "tenantctl").json()
    assert after["data"] == {"a": "1", "b": "2"}  # a is still owned by the creator


def test_list_map_items_no_longer_applied_are_removed(http: httpx.Client) -> None:
    path = "/api/v1/namespaces/team/serviceaccounts/sa"
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "sa", "namespace": "team"},
        "secrets": [{"name": "one"}, {"name": "two"}],
    }
    first = apply(http, body, "tenantctl", path=path).json()
    assert managers(first)[("tenantctl", "Apply")] == {
        "f:secrets": {
            'k:{"name":"one"}': {".": {}, "f:name": {}},
            'k:{"name":"two"}': {".": {}, "f:name": {}},
        }
    }
    other = {**body, "secrets": [{"name": "two"}]}
    assert apply(http, other, "other", path=path).status_code == 200
    after = apply(http, {**body, "secrets": []}, "tenantctl", path=path).json()
    assert after["secrets"] == [{"name": "two"}]


def test_apply_into_a_missing_or_terminating_namespace(http: httpx.Client) -> None:
    ghost = cm(a="1")
    ghost["metadata"]["namespace"] = "ghost"
    missing = apply(http, ghost, "tenantctl", path="/api/v1/namespaces/ghost/configmaps/app")
    assert missing.status_code == 404
    assert missing.json()["message"] == 'namespaces "ghost" not found'
    http.delete("/api/v1/namespaces/team")
    refused = apply(http, cm(a="1"), "tenantctl")
    assert refused.status_code == 403
    assert refused.json()["details"]["causes"][0]["reason"] == "NamespaceTerminating"


def test_update_entries_mark_the_maps_they_create(http: httpx.Client) -> None:
    created = http.post(
        "/api/v1/namespaces/team/configmaps",
        json={"metadata": {"name": "app", "labels": {"a": "1"}}, "data": {"k": "v"}},
        params={"fieldManager": "kubectl-create"},
    ).json()
    assert managers(created) == {
        ("kubectl-create", "Update"): {
            "f:data": {".": {}, "f:k": {}},
            "f:metadata": {"f:labels": {".": {}, "f:a": {}}},
        }
    }
