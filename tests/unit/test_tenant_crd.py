"""The Tenant CustomResourceDefinition: valid, structural, and a lossless carrier of tenants.

Every example tenant goes file -> Tenant object -> the CRD's schema (strict: unknown
fields refused, as `fieldValidation=Strict` does) -> back to an identical Tenant model;
the same objects are created on the fake apiserver through the official client.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException
from openapi_schema_validator import OAS30Validator
from typer.testing import CliRunner

from controlplane.errors import ConfigError
from controlplane.service import crd_source, inputs
from controlplane.service.crd_source import definition
from tenantctl.main import app
from tests.conftest import EXAMPLES

K8S_VERSION = "1.31.0"
# What a structural schema node may hold (k8s.io/apiextensions-apiserver structural schema).
STRUCTURAL_KEYS = {
    "type", "description", "properties", "additionalProperties", "items", "required",
    "enum", "pattern", "format", "minLength", "maxLength", "minimum", "maximum", "minItems",
    "maxItems", "nullable", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
}  # fmt: skip


def _examples() -> list[Any]:
    _, sources = inputs.load([EXAMPLES])
    return sources


def _platform() -> Any:
    return inputs.load([EXAMPLES])[0]


def _schema() -> dict[str, Any]:
    version = definition()["spec"]["versions"][0]
    return dict(version["schema"]["openAPIV3Schema"])


def _nodes(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for name, child in (node.get("properties") or {}).items():
        found += _nodes(child, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        found += _nodes(node["additionalProperties"], f"{path}.*")
    if isinstance(node.get("items"), dict):
        found += _nodes(node["items"], f"{path}[]")
    return found


def _closed(node: dict[str, Any]) -> dict[str, Any]:
    """The schema refusing undeclared fields (what `fieldValidation=Strict` enforces)."""
    out = copy.deepcopy(node)
    for _, each in _nodes(out):
        if "properties" in each and each is not out["properties"].get("metadata"):
            each["additionalProperties"] = False
    out["properties"]["metadata"] = {"type": "object"}
    return out


def test_the_crd_passes_strict_kubernetes_validation() -> None:
    kubernetes_validate.validate(definition(), K8S_VERSION, strict=True)


def test_the_schema_is_structural() -> None:
    for path, node in _nodes(_schema()):
        assert "type" in node, f"{path}: every node needs a type"
        assert set(node) <= STRUCTURAL_KEYS, f"{path}: {set(node) - STRUCTURAL_KEYS}"
        assert not ("properties" in node and "additionalProperties" in node), path
        assert "$ref" not in str(node), path


def test_printer_columns_and_status_subresource() -> None:
    version = definition()["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Tier"] == ".spec.tier"
    assert columns["Status"] == ".status.phase"
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert definition()["spec"]["scope"] == "Cluster"


def test_every_example_tenant_round_trips_through_the_schema() -> None:
    validator = OAS30Validator(_closed(_schema()))
    sources = _examples()
    assert len(sources) >= 5
    for source in sources:
        obj = crd_source.to_object(source)
        assert obj["metadata"]["name"] == source.tenant.id
        errors = [e.message for e in validator.iter_errors(obj)]
        assert errors == [], f"{source.file}: {errors}"
        back = crd_source.tenant_of(obj, _platform())
        assert back.tenant == source.tenant, source.file


@pytest.mark.parametrize(
    ("reason", "spec_change", "want"),
    [
        ("unknown tier", {"tier": "gold"}, "is not one of"),
        ("unknown field", {"colour": "red"}, "Additional properties"),
        ("pods below one", {"limits": {"pods": 0}}, "less than the minimum"),
        ("bad colour", {"branding": {"primary_color": "red"}}, "does not match"),
    ],
)
def test_the_schema_refuses_what_the_model_refuses(
    reason: str, spec_change: dict[str, Any], want: str
) -> None:
    obj = crd_source.to_object(_examples()[0])
    obj["spec"] = {**obj["spec"], **spec_change}
    errors = " ".join(e.message for e in OAS30Validator(_closed(_schema())).iter_errors(obj))
    assert want in errors, reason


def test_a_spec_whose_id_differs_from_the_name_is_refused() -> None:
    obj = crd_source.to_object(_examples()[0])
    obj["metadata"]["name"] = "someone-else"
    with pytest.raises(ConfigError) as caught:
        crd_source.tenant_of(obj, _platform())
    assert "tenants.tenantctl.io/someone-else" in caught.value.message
    assert "metadata.name" in caught.value.message


@pytest.mark.slow
def test_the_fake_apiserver_serves_the_crd_and_stores_every_example(kube_apiserver: Any) -> None:
    api = kube_apiserver.api_client()
    k8s_client.ApiextensionsV1Api(api).create_custom_resource_definition(definition())
    objects = k8s_client.CustomObjectsApi(api)
    for source in _examples():
        created = objects.create_cluster_custom_object(
            "tenantctl.io", "v1", "tenants", crd_source.to_object(source)
        )
        assert created["metadata"]["generation"] == 1
        read = objects.get_cluster_custom_object("tenantctl.io", "v1", "tenants", source.tenant.id)
        assert crd_source.tenant_of(read, _platform()).tenant == source.tenant
    bad = crd_source.to_object(_examples()[0])
    bad["metadata"]["name"] = bad["spec"]["id"] = "gold-tenant"
    bad["spec"]["tier"] = "gold"
    with pytest.raises(ApiException) as caught:
        objects.create_cluster_custom_object("tenantctl.io", "v1", "tenants", bad)
    assert caught.value.status == 422
    assert 'spec.tier: Unsupported value: "gold"' in json.loads(caught.value.body)["message"]


def test_the_crd_command_prints_the_definition() -> None:
    result = CliRunner().invoke(app, ["crd"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == definition()
