"""CRDs created at run time, as kube-apiserver serves them: discovery, validation, status,
finalizers and watch of the new kind, and withdrawal when the CRD is deleted."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from tests.fakes.kube_fixtures import FakeCluster

GROUP, VERSION, PLURAL = "example.io", "v1", "widgets"
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Cluster",
        "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "required": ["spec"],
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "string", "enum": ["s", "m"]},
                                    "count": {"type": "integer", "minimum": 1},
                                    "note": {"type": "string", "nullable": True},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {"ready": {"type": "boolean"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def _widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": "s", **spec},
    }


@pytest.fixture
def widgets(kube_apiserver: FakeCluster) -> k8s_client.CustomObjectsApi:
    api = kube_apiserver.api_client()
    created = k8s_client.ApiextensionsV1Api(api).create_custom_resource_definition(CRD)
    conditions = {c.type: c.status for c in created.status.conditions}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    return k8s_client.CustomObjectsApi(api)


def test_a_created_crd_is_served_and_listed_in_discovery(
    kube_apiserver: FakeCluster, widgets: k8s_client.CustomObjectsApi
) -> None:
    api = kube_apiserver.api_client()
    groups = k8s_client.ApisApi(api).get_api_versions()
    assert GROUP in [g.name for g in groups.groups]
    resources = k8s_client.CustomObjectsApi(api).get_api_resources(GROUP, VERSION)
    assert {r.name for r in resources.resources} == {PLURAL, f"{PLURAL}/status"}
    widgets.create_cluster_custom_object(GROUP, VERSION, PLURAL, _widget("a"))
    listed = widgets.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
    assert listed["items"][0]["kind"] == "Widget"  # CR list items carry their kind


@pytest.mark.parametrize(
    ("reason", "spec", "want"),
    [
        ("enum", {"size": "xl"}, 'spec.size: Unsupported value: "xl": supported values: "s", "m"'),
        ("minimum", {"count": 0}, "spec.count: Invalid value: 0: should be greater than or equal"),
        ("type", {"count": "two"}, 'spec.count: Invalid value: "string": must be of type integer'),
        ("required", {"size": None}, "spec.size: Invalid value"),
    ],
)
def test_objects_are_validated_against_the_schema(
    widgets: k8s_client.CustomObjectsApi, reason: str, spec: dict[str, Any], want: str
) -> None:
    with pytest.raises(ApiException) as caught:
        widgets.create_cluster_custom_object(GROUP, VERSION, PLURAL, _widget("bad", **spec))
    assert caught.value.status == 422, reason
    assert want in json.loads(caught.value.body)["message"], reason


def test_nullable_fields_accept_null(widgets: k8s_client.CustomObjectsApi) -> None:
    created = widgets.create_cluster_custom_object(GROUP, VERSION, PLURAL, _widget("n", note=None))
    assert created["spec"]["note"] is None


def test_status_is_written_only_through_its_subresource(
    widgets: k8s_client.CustomObjectsApi,
) -> None:
    body = {**_widget("s"), "status": {"ready": True}}
    created = widgets.create_cluster_custom_object(GROUP, VERSION, PLURAL, body)
    assert "status" not in created
    patched = widgets.patch_cluster_custom_object_status(
        GROUP, VERSION, PLURAL, "s", {"status": {"ready": True}}
    )
    assert patched["status"] == {"ready": True}
    assert patched["metadata"]["generation"] == 1  # status is not spec
    with pytest.raises(ApiException) as caught:
        widgets.patch_cluster_custom_object_status(
            GROUP, VERSION, PLURAL, "s", {"status": {"ready": "yes"}}
        )
    assert caught.value.status == 422


def test_a_finalizer_holds_the_deletion_until_it_is_removed(
    widgets: k8s_client.CustomObjectsApi,
) -> None:
    body = _widget("f")
    body["metadata"]["finalizers"] = ["example.io/cleanup"]
    widgets.create_cluster_custom_object(GROUP, VERSION, PLURAL, body)
    deleting = widgets.delete_cluster_custom_object(GROUP, VERSION, PLURAL, "f")
    assert deleting["metadata"]["deletionTimestamp"]
    still = widgets.get_cluster_custom_object(GROUP, VERSION, PLURAL, "f")
    version = still["metadata"]["resourceVersion"]
    widgets.patch_cluster_custom_object(
        GROUP, VERSION, PLURAL, "f", {"metadata": {"finalizers": [], "resourceVersion": version}}
    )
    with pytest.raises(ApiException) as caught:
        widgets.get_cluster_custom_object(GROUP, VERSION, PLURAL, "f")
    assert caught.value.status == 404


def test_the_python_watch_follows_objects_of_the_new_kind(
    widgets: k8s_client.CustomObjectsApi,
) -> None:
    listed = widgets.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def follow() -> None:
        stream = k8s_watch.Watch()
        for event in stream.stream(
            widgets.list_cluster_custom_object,
            GROUP,
            VERSION,
            PLURAL,
            resource_version=listed["metadata"]["resourceVersion"],
            timeout_seconds=10,
        ):
            seen.append((event["type"], event["raw_object"]["metadata"]["name"]))
            if event["type"] == "DELETED":
                stream.stop()
        done.set()

    thread = threading.Thread(target=follow)
    thread.start()
    widgets.create_cluster_custom_object(GROUP, VERSION, PLURAL, _widget("w"))
    widgets.delete_cluster_custom_object(GROUP, VERSION, PLURAL, "w")
    assert done.wait(15)
    thread.join()
    assert seen == [("ADDED", "w"), ("DELETED", "w")]


def test_deleting_the_crd_withdraws_the_kind_and_its_objects(
    kube_apiserver: FakeCluster, widgets: k8s_client.CustomObjectsApi
) -> None:
    widgets.create_cluster_custom_object(GROUP, VERSION, PLURAL, _widget("gone"))
    api = kube_apiserver.api_client()
    k8s_client.ApiextensionsV1Api(api).delete_custom_resource_definition(f"{PLURAL}.{GROUP}")
    with pytest.raises(ApiException) as caught:
        widgets.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    assert caught.value.status == 404
