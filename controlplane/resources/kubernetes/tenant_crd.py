"""The `Tenant` custom resource: its CustomResourceDefinition and tenant <-> object.

A Tenant object's `spec` is exactly what a tenant file holds under `tenant:`, so Argo CD
or Flux can sync tenant files as resources. Its schema is the tenant model's JSON Schema
rewritten as the *structural* OpenAPI v3 schema kube-apiserver demands of a v1 CRD: no
`$ref`/`$defs`, a `type` on every node, `nullable` instead of `anyOf [..., null]`,
never `additionalProperties` beside `properties` (the apiserver prunes unknown fields,
or refuses them under `fieldValidation=Strict`), no `title`s and no `default`s (the
server would write defaults into every stored object; the model applies them instead).
A keyword the rewrite does not know is an error, so a model change cannot silently
produce a schema a real apiserver refuses.
"""

from __future__ import annotations

from typing import Any

from controlplane.models.tenants import Tenant
from controlplane.resources.kubernetes.objects import MANAGED_BY, MANAGED_BY_LABEL, Manifest

__all__ = [
    "API_VERSION",
    "CONDITION_TYPES",
    "CRD_NAME",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "definition",
    "spec_schema",
    "to_object",
]

GROUP = "tenantctl.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Tenant"
PLURAL = "tenants"
CRD_NAME = f"{PLURAL}.{GROUP}"
CONDITION_TYPES = ("Ready", "Reconciling", "Drifted", "Failed")

# Keywords copied as they are (all are allowed in a structural schema).
_KEPT = frozenset(
    {
        "description",
        "enum",
        "format",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "multipleOf",
        "required",
        "type",
    }
)
# Keywords dropped on purpose (see the module docstring).
_DROPPED = frozenset({"title", "default", "$defs", "additionalProperties"})


def spec_schema() -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a Tenant object's `spec` (the tenant model)."""
    schema = Tenant.model_json_schema()
    return _structural(schema, schema.get("$defs") or {}, "spec")


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline a `$ref` (its siblings win), recursively."""
    ref = node.get("$ref")
    if ref is None:
        return node
    target = defs[str(ref).rsplit("/", 1)[-1]]
    return {**_resolve(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}


def _structural(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    node = _resolve(node, defs)
    if "anyOf" in node:
        return _nullable(node, defs, path)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _KEPT:
            out[key] = value
        elif key == "properties":
            out["properties"] = {
                name: _structural(child, defs, f"{path}.{name}") for name, child in value.items()
            }
        elif key == "items":
            out["items"] = _structural(value, defs, f"{path}[]")
        elif key not in _DROPPED:
            msg = f"{path}: JSON Schema keyword {key!r} has no structural OpenAPI form here"
            raise ValueError(msg)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and "properties" not in node:
        out["additionalProperties"] = _structural(extra, defs, f"{path}.*")
    if "type" not in out:
        msg = f"{path}: a structural schema needs a type on every node"
        raise ValueError(msg)
    return out


def _nullable(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    """pydantic's `X | None` (`anyOf: [X, {"type": "null"}]`) is `X` with `nullable`."""
    options = node["anyOf"]
    kept = [o for o in options if o.get("type") != "null"]
    if len(kept) != 1:
        msg = f"{path}: anyOf of {len(kept)} non-null schemas has no structural form"
        raise ValueError(msg)
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    out = _structural({**kept[0], **rest}, defs, path)
    if len(kept) < len(options):
        out["nullable"] = True
        if "enum" in out:  # the enum check runs on null too
            out["enum"] = [*out["enum"], None]
    return out


def _condition_schema() -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string", "enum": list(CONDITION_TYPES)},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": text,
            "message": text,
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
        },
    }


def _status_schema() -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "type": "object",
        "description": "Written by `tenantctl reconcile --source kubernetes`",
        "properties": {
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
            "phase": {**text, "description": "The tenant's recorded status (active, ...)"},
            "step": {**text, "description": "The step the newest operation ran last"},
            "operation": {**text, "description": "Id of the newest operation"},
            "message": text,
            "conditions": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
                "items": _condition_schema(),
            },
        },
    }


def definition() -> Manifest:
    """The `Tenant` CustomResourceDefinition (cluster-scoped: tenant ids are global)."""
    column = '.status.conditions[?(@.type=="Ready")].status'
    root = {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": _status_schema(),
        },
        "x-kubernetes-validations": [
            {"rule": "self.metadata.name == self.spec.id", "message": "must equal spec.id"}
        ],
    }
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "additionalPrinterColumns": [
            {"name": "Tier", "type": "string", "jsonPath": ".spec.tier"},
            {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Ready", "type": "string", "jsonPath": column},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        "schema": {"openAPIV3Schema": root},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "plural": PLURAL,
                "singular": "tenant",
                "kind": KIND,
                "listKind": f"{KIND}List",
                "categories": ["tenantctl"],
            },
            "versions": [version],
        },
    }


def to_object(tenant: Tenant) -> Manifest:
    """The Tenant object of a tenant: `spec` is the file's `tenant:` as it was written."""
    spec: Manifest = tenant.model_dump(mode="json", exclude_unset=True)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": tenant.id},
        "spec": spec,
    }
