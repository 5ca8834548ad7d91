"""The table of resource types the fake serves, built from the discovery documents.

Built-in kinds come from `x-kubernetes-discovery` in the shipped OpenAPI subset, CRD kinds
from the CRD files, and a few extra kinds from `EXTRA` below: adding a kind is one table row.
Every lookup the router needs (by group/version/plural, by kind, by short name) lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from tests.fakes.kube_apiserver import schemas

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

# Kinds with `metadata.generation` among the built-ins (CRD objects always have it).
GENERATION_KINDS = frozenset({"NetworkPolicy", "PodDisruptionBudget", "Deployment"})

# Kinds added cheaply: (group, version, plural, kind, namespaced, shortNames).
EXTRA: tuple[tuple[str, str, str, str, bool, tuple[str, ...]], ...] = (
    ("", "v1", "services", "Service", True, ("svc",)),
    ("", "v1", "pods", "Pod", True, ("po",)),
    ("", "v1", "events", "Event", True, ("ev",)),
    ("apps", "v1", "deployments", "Deployment", True, ("deploy",)),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, ()),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False, ()),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        ("crd", "crds"),
    ),
)


@dataclass(frozen=True)
class ResourceType:
    """One served resource (a group/version/plural), with what the server needs to know."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    singular: str = ""
    subresources: tuple[str, ...] = ()
    crd: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        """`v1` or `<group>/<version>`."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`configmaps` or `roles.rbac.authorization.k8s.io`, as used in Status messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """`ConfigMap` or `Role.rbac.authorization.k8s.io`, as used in Invalid messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def is_custom(self) -> bool:
        """True for CRD-backed kinds (no strategic merge, always a generation)."""
        return self.crd is not None

    @property
    def has_generation(self) -> bool:
        """Whether the server maintains `metadata.generation` for this kind."""
        return self.is_custom or self.kind in GENERATION_KINDS

    @property
    def has_status(self) -> bool:
        """Whether `status` is a subresource (ignored on writes to the main resource)."""
        return "status" in self.subresources

    @property
    def storage_key(self) -> tuple[str, str]:
        """Objects are stored once per group/resource, whatever version is requested."""
        return (self.group, self.plural)

    def schema(self) -> schemas.Schema:
        """The structural schema of this kind."""
        if self.crd is not None:
            return schemas.crd_schema(self.crd, self.version)
        return _builtin_schema(self.group, self.version, self.kind)

    def api_resource(self) -> dict[str, Any]:
        """The APIResource entry of discovery."""
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(STANDARD_VERBS if self.namespaced else _cluster_verbs(self)),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        return entry


def _cluster_verbs(rtype: ResourceType) -> tuple[str, ...]:
    if rtype.kind == "Namespace":
        return tuple(v for v in STANDARD_VERBS if v != "deletecollection")
    return STANDARD_VERBS


@cache
def _builtin_schema(group: str, version: str, kind: str) -> schemas.Schema:
    return schemas.builtin_schema(group, version, kind)


class Registry:
    """All served resource types, indexed for routing."""

    def __init__(self, types: list[ResourceType], discovery: dict[str, dict[str, Any]]) -> None:
        self.types = types
        self.discovery = discovery
        self._by_path = {(t.group, t.version, t.plural): t for t in types}

    def copy(self) -> Registry:
        """A registry of the same types that can serve more (one per fake cluster)."""
        return Registry(list(self.types), dict(self.discovery))

    def serve(self, crd: dict[str, Any]) -> None:
        """Serve the versions of a created or changed CRD (as the apiextensions server does)."""
        self.withdraw(crd)
        self.types.extend(_from_crd(crd))
        self._by_path = {(t.group, t.version, t.plural): t for t in self.types}

    def withdraw(self, crd: dict[str, Any]) -> None:
        """Stop serving a deleted CRD's types."""
        key = (crd["spec"]["group"], crd["spec"]["names"]["plural"])
        self.types = [t for t in self.types if t.storage_key != key]
        self._by_path = {(t.group, t.version, t.plural): t for t in self.types}

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The type served at `/apis/<group>/<version>/<plural>` (group `""` for core)."""
        return self._by_path.get((group, version, plural))

    def by_kind(self, kind_or_plural: str, api_version: str | None = None) -> ResourceType:
        """Find a type by Kind, plural, short name or `plural.group` (for tests)."""
        wanted = kind_or_plural.lower()
        for rtype in self.types:
            if api_version and rtype.api_version != api_version:
                continue
            names = {rtype.kind.lower(), rtype.plural, rtype.group_resource, *rtype.short_names}
            if wanted in names:
                return rtype
        msg = f"unknown kind {kind_or_plural!r}"
        raise KeyError(msg)

    def group_versions(self) -> dict[str, list[str]]:
        """Group name -> served versions, preferred first, in discovery order."""
        groups: dict[str, list[str]] = {}
        for rtype in self.types:
            versions = groups.setdefault(rtype.group, [])
            if rtype.version not in versions:
                versions.append(rtype.version)
        return groups

    def resources_of(self, group: str, version: str) -> list[dict[str, Any]]:
        """APIResource entries of one group version (subresources included)."""
        key = f"{group}/{version}" if group else version
        if key in self.discovery:
            return list(self.discovery[key]["resources"])
        entries: list[dict[str, Any]] = []
        for rtype in self.types:
            if (rtype.group, rtype.version) == (group, version):
                entries.append(rtype.api_resource())
                entries.extend(_subresource_entry(rtype, sub) for sub in rtype.subresources)
        return entries


def _subresource_entry(rtype: ResourceType, sub: str) -> dict[str, Any]:
    return {
        "name": f"{rtype.plural}/{sub}",
        "singularName": "",
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": ["get", "patch", "update"],
    }


def _from_discovery(gv: str, body: dict[str, Any]) -> list[ResourceType]:
    group, _, version = gv.rpartition("/")
    entries = body["resources"]
    subs: dict[str, list[str]] = {}
    for entry in entries:
        if "/" in entry["name"]:
            parent, sub = entry["name"].split("/", 1)
            subs.setdefault(parent, []).append(sub)
    return [
        ResourceType(
            group=group,
            version=version,
            plural=entry["name"],
            kind=entry["kind"],
            namespaced=entry["namespaced"],
            short_names=tuple(entry.get("shortNames", ())),
            singular=entry.get("singularName", ""),
            subresources=tuple(subs.get(entry["name"], ())),
            categories=tuple(entry.get("categories", ())),
        )
        for entry in entries
        if "/" not in entry["name"]
    ]


def _from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    spec = crd["spec"]
    names = spec["names"]
    versions = sorted(spec["versions"], key=lambda v: not v.get("storage"))
    return [
        ResourceType(
            group=spec["group"],
            version=entry["name"],
            plural=names["plural"],
            kind=names["kind"],
            namespaced=spec["scope"] == "Namespaced",
            short_names=tuple(names.get("shortNames", ())),
            singular=names.get("singular", ""),
            subresources=tuple(entry.get("subresources", {})),
            crd=crd,
            categories=tuple(names.get("categories", ())),
        )
        for entry in versions
        if entry.get("served")
    ]


@cache
def default_registry() -> Registry:
    """Built-ins from the OpenAPI subset's discovery, CRD kinds, and the `EXTRA` rows."""
    discovery = schemas.openapi_document()["x-kubernetes-discovery"]
    crd_groups = {crd["spec"]["group"] for crd in schemas.crd_documents()}
    types: list[ResourceType] = []
    for gv, body in discovery.items():
        if gv.rpartition("/")[0] not in crd_groups:
            types.extend(_from_discovery(gv, body))
    for group, version, plural, kind, namespaced, short in EXTRA:
        types.append(ResourceType(group, version, plural, kind, namespaced, short))
    for crd in schemas.crd_documents():
        types.extend(_from_crd(crd))
    kept = {gv: body for gv, body in discovery.items() if gv.rpartition("/")[0] not in crd_groups}
    return Registry(types, kept)
