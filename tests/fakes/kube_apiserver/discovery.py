"""Discovery and OpenAPI documents: what clients read before they touch any object.

The official Python client's DynamicClient reads `/version`, `/apis`, `/api/v1` and every
group version; kubectl reads `/api` and `/apis` (the legacy bodies suffice), and before an
apply with `--validate=strict` it reads `/openapi/v3` and the per-group-version document,
looking for PATCH operations that accept `fieldValidation` for the object's kind.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from tests.fakes.kube_apiserver import schemas
from tests.fakes.kube_apiserver.registry import Registry, ResourceType

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0",
    "gitCommit": "70d3cc986aa8221cd1dfb1121852688902d3bf53",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T17:59:15Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def core_versions() -> dict[str, Any]:
    """`GET /api`."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}
        ],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def group_list(registry: Registry) -> dict[str, Any]:
    """`GET /apis`."""
    groups = [_group(g, vs) for g, vs in registry.group_versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(registry: Registry, name: str) -> dict[str, Any] | None:
    """`GET /apis/<group>`."""
    versions = registry.group_versions().get(name)
    if not name or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def resource_list(registry: Registry, group_name: str, version: str) -> dict[str, Any] | None:
    """`GET /api/v1` or `GET /apis/<group>/<version>`."""
    if version not in registry.group_versions().get(group_name, []):
        return None
    gv = f"{group_name}/{version}" if group_name else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": registry.resources_of(group_name, version),
    }


def _gv_path(group_name: str, version: str) -> str:
    return f"apis/{group_name}/{version}" if group_name else f"api/{version}"


def openapi_v3_index(registry: Registry) -> dict[str, Any]:
    """`GET /openapi/v3`: one entry per group version."""
    paths = {}
    for group_name, versions in registry.group_versions().items():
        for version in versions:
            path = _gv_path(group_name, version)
            digest = hashlib.sha256(path.encode()).hexdigest()[:16].upper()
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}


def openapi_v3_document(registry: Registry, gv_path: str) -> dict[str, Any] | None:
    """`GET /openapi/v3/<api/v1|apis/g/v>`: PATCH operations that accept fieldValidation."""
    types = [t for t in registry.types if _gv_path(t.group, t.version) == gv_path]
    if not types:
        return None
    paths = {}
    for rtype in types:
        paths[_item_path(rtype)] = {"patch": _patch_operation(rtype)}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": _component_schemas(tuple(types))},
    }


def _item_path(rtype: ResourceType) -> str:
    base = f"/{_gv_path(rtype.group, rtype.version)}"
    scope = "/namespaces/{namespace}" if rtype.namespaced else ""
    return f"{base}{scope}/{rtype.plural}/{{name}}"


def _patch_operation(rtype: ResourceType) -> dict[str, Any]:
    query = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")
    return {
        "operationId": f"patch{rtype.kind}",
        "parameters": [{"name": q, "in": "query", "schema": {"type": "string"}} for q in query],
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {
            "group": rtype.group,
            "version": rtype.version,
            "kind": rtype.kind,
        },
    }


@cache
def _component_schemas(types: tuple[ResourceType, ...]) -> dict[str, Any]:
    """The shipped schemas, each kind's tagged with its GVK as the real documents are."""
    components = json.loads(json.dumps(schemas.openapi_document()["components"]["schemas"]))
    for rtype in types:
        short = rtype.group.split(".")[0] if rtype.group else "core"
        name = f"io.k8s.api.{short}.{rtype.version}.{rtype.kind}"
        if name in components:
            gvk = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
            components[name]["x-kubernetes-group-version-kind"] = [gvk]
    return dict(components)
