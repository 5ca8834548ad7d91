"""Structural type information that drives merging, server-side apply and validation.

Server-side apply and strategic-merge patches depend on the *shape* of a field, not only on
its value: whether a list is atomic, a set or a map keyed by some fields, and whether a struct
is atomic. The real apiserver reads this from its OpenAPI schemas; the fake does the same with
the OpenAPI subset the project ships (built-ins) and the CRD schemas (Istio, ESO), whose lists
carry no annotations and are therefore atomic. Fields without a schema behave like
`x-kubernetes-preserve-unknown-fields`: granular maps and atomic lists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).resolve().parent / "data"
OPENAPI_FILE = DATA / "kubernetes-openapi-subset.json"
CRD_FILES = (DATA / "kubernetes-istio-crds.yaml", DATA / "kubernetes-externalsecret-crd.yaml")


@dataclass(frozen=True)
class Schema:
    """One node of an OpenAPI schema, with `$ref`s resolved lazily against `definitions`."""

    node: dict[str, Any] = field(default_factory=dict)
    definitions: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def _resolved(self) -> dict[str, Any]:
        node = self.node
        ref = node.get("$ref")
        if ref:
            target = dict(self.definitions.get(ref.rsplit("/", 1)[-1], {}))
            return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        for combo in ("allOf",):
            if combo in node and len(node[combo]) == 1:
                return {**Schema(node[combo][0], self.definitions)._resolved(), **node}
        return node

    @property
    def known(self) -> bool:
        """False for the schemaless placeholder (unknown fields)."""
        return bool(self.node)

    @property
    def resolved(self) -> dict[str, Any]:
        """The node with its `$ref` expanded."""
        return self._resolved()

    def child(self, name: str) -> Schema:
        """Schema of struct field or map value `name` (schemaless when unknown)."""
        node = self._resolved()
        props = node.get("properties") or {}
        if name in props:
            return Schema(props[name], self.definitions)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            return Schema(extra, self.definitions)
        return Schema({}, self.definitions)

    def item(self) -> Schema:
        """Schema of a list item."""
        items = self._resolved().get("items")
        return Schema(items if isinstance(items, dict) else {}, self.definitions)

    @property
    def is_map(self) -> bool:
        """A map with arbitrary keys (labels, data) rather than a struct with named fields."""
        node = self._resolved()
        return "additionalProperties" in node and not node.get("properties")

    @property
    def atomic_struct(self) -> bool:
        """`x-kubernetes-map-type: atomic`: the whole struct has one owner."""
        return self._resolved().get("x-kubernetes-map-type") == "atomic"

    @property
    def list_type(self) -> str:
        """`atomic`, `set` or `map` (a merge-strategy list without listType counts as map)."""
        node = self._resolved()
        declared = node.get("x-kubernetes-list-type")
        if declared:
            return str(declared)
        if node.get("x-kubernetes-patch-strategy", "").startswith("merge"):
            key = node.get("x-kubernetes-patch-merge-key")
            return "map" if key else "set"
        return "atomic"

    @property
    def list_keys(self) -> tuple[str, ...]:
        """Keys identifying the items of a `map` list."""
        node = self._resolved()
        keys = node.get("x-kubernetes-list-map-keys")
        if keys:
            return tuple(keys)
        key = node.get("x-kubernetes-patch-merge-key")
        return (key,) if key else ()

    @property
    def patch_merge_key(self) -> str | None:
        """Strategic-merge key of a list with `x-kubernetes-patch-strategy: merge`."""
        node = self._resolved()
        if "merge" in str(node.get("x-kubernetes-patch-strategy", "")):
            key = node.get("x-kubernetes-patch-merge-key")
            return str(key) if key else ""
        return None

    @property
    def required(self) -> tuple[str, ...]:
        """Required property names."""
        return tuple(self._resolved().get("required") or ())

    @property
    def properties(self) -> dict[str, Any]:
        """Declared struct properties (empty for maps and unknowns)."""
        return dict(self._resolved().get("properties") or {})

    @property
    def preserves_unknown(self) -> bool:
        """True where unknown fields are allowed (schemaless or preserve-unknown-fields)."""
        node = self._resolved()
        return (
            not node
            or bool(node.get("x-kubernetes-preserve-unknown-fields"))
            or "additionalProperties" in node
        )


SCHEMALESS = Schema({}, {})


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI subset of the built-in kinds (with `x-kubernetes-discovery`)."""
    return dict(json.loads(OPENAPI_FILE.read_text()))


@cache
def crd_documents() -> tuple[dict[str, Any], ...]:
    """The CustomResourceDefinitions the fake serves (Istio security, ESO)."""
    docs: list[dict[str, Any]] = []
    for path in CRD_FILES:
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return tuple(docs)


def builtin_schema(group: str, version: str, kind: str) -> Schema:
    """Schema of a built-in kind, looked up by its `io.k8s.api.<group>.<version>.<Kind>` name."""
    schemas = openapi_document()["components"]["schemas"]
    short = group.split(".", maxsplit=1)[0] if group else "core"
    name = f"io.k8s.api.{short}.{version}.{kind}"
    return Schema(schemas[name], schemas) if name in schemas else SCHEMALESS


def crd_schema(crd: dict[str, Any], version: str) -> Schema:
    """Schema of one served version of a CRD, with standard ObjectMeta rules for `metadata`."""
    schemas = openapi_document()["components"]["schemas"]
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            root = dict(entry.get("schema", {}).get("openAPIV3Schema", {}))
            props = dict(root.get("properties") or {})
            props["metadata"] = {
                "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
            }
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
            return Schema({**root, "properties": props}, schemas)
    return SCHEMALESS
