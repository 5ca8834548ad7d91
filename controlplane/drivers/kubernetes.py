"""Kubernetes: server-side apply of a tenant's objects, prune by label, drift diff.

Two implementations of the same small interface (`converge`, `differences`,
`remove`):

- `KubernetesClusters` talks to API servers through the official client. It lists
  what a scope owns (one labelled list per kind, across namespaces), compares desired
  objects *as the server stores them* (defaults filled in, quantities canonical) with
  the live ones field by field in memory, and only then writes: a server-side apply
  (field manager `tenantctl`) for objects that differ, a delete for objects no longer
  wanted. Objects that carry isolation (`GUARDED_KINDS`) are compared whole: a field
  someone else added is drift, removed by a merge patch guarded by resourceVersion.
  A converged tenant therefore costs reads only. Inside `snapshot()` the lists
  are shared by every scope, so reconciling 1,000 tenants costs a handful of lists.
- `RenderedClusters` writes the same objects as files for GitOps (Argo CD, Flux).

Every SDK exception is translated here (`translated`, which `tenant_resources` shares)
into the control plane's errors.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from controlplane.errors import ConfigError, ConflictError, KubernetesError, SourceLocation
from controlplane.models import quantities
from controlplane.models.kubernetes import FieldDifference, ObjectChange, Scope

__all__ = [
    "FIELD_MANAGER",
    "GUARDED_KINDS",
    "KINDS",
    "KubernetesClusters",
    "RenderedClusters",
    "connect",
    "rbac_rules",
    "translated",
]

FIELD_MANAGER = "tenantctl"
_APPLY = "application/apply-patch+yaml"
_MERGE = "application/merge-patch+json"
_PAGE = 500
_LISTS_IN_FLIGHT = 8  # a snapshot's concurrent LISTs on one cluster (urllib3 pools 5 per core)
_SERVER_SET = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")


@dataclass(frozen=True)
class _Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def base(self) -> str:
        if "/" not in self.api_version:
            return f"/api/{self.api_version}"
        return f"/apis/{self.api_version}"

    def collection(self, namespace: str = "") -> str:
        if namespace and self.namespaced:
            return f"{self.base()}/namespaces/{namespace}/{self.plural}"
        return f"{self.base()}/{self.plural}"

    def item(self, namespace: str, name: str) -> str:
        return f"{self.collection(namespace)}/{name}"


KINDS: dict[tuple[str, str], _Kind] = {
    (k.api_version, k.kind): k
    for k in (
        _Kind("v1", "Namespace", "namespaces", namespaced=False),
        _Kind("v1", "ResourceQuota", "resourcequotas", namespaced=True),
        _Kind("v1", "LimitRange", "limitranges", namespaced=True),
        _Kind("v1", "ServiceAccount", "serviceaccounts", namespaced=True),
        _Kind("v1", "ConfigMap", "configmaps", namespaced=True),
        _Kind("v1", "Secret", "secrets", namespaced=True),
        _Kind("rbac.authorization.k8s.io/v1", "Role", "roles", namespaced=True),
        _Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", namespaced=True),
        _Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", namespaced=True),
        _Kind("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", namespaced=False),
        _Kind("security.istio.io/v1", "PeerAuthentication", "peerauthentications", True),
        _Kind("security.istio.io/v1", "AuthorizationPolicy", "authorizationpolicies", True),
        _Kind("external-secrets.io/v1", "ExternalSecret", "externalsecrets", namespaced=True),
    )
}

Obj = dict[str, Any]
_Key = tuple[str, str, str, str]  # apiVersion, kind, namespace, name
# What `_Api` sends: list (GET a collection), get (exists), patch (server-side apply and
# merge patches), create (an apply that creates), delete (prune).
_VERBS = ("create", "delete", "get", "list", "patch")


def rbac_rules() -> list[tuple[str, str, tuple[str, ...]]]:
    """(apiGroup, resource, verbs) of every request `KubernetesClusters` makes."""
    return [(k.api_version.rpartition("/")[0], k.plural, _VERBS) for k in KINDS.values()]


def _kind_of(obj: Mapping[str, Any]) -> _Kind:
    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    if key not in KINDS:
        msg = f"tenantctl does not manage {key[1]} ({key[0]}) objects"
        raise KubernetesError(msg)
    return KINDS[key]


def _key(obj: Mapping[str, Any]) -> _Key:
    meta = obj.get("metadata") or {}
    return (obj["apiVersion"], obj["kind"], meta.get("namespace") or "", meta["name"])


def _target(key: _Key) -> str:
    _, kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _matches(obj: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


# --- error translation -----------------------------------------------------------------


def _retry_after(exc: ApiException) -> float | None:
    value = (exc.headers or {}).get("Retry-After") if exc.headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _status_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        return str(exc.reason or exc.status)
    return str(body.get("message") or exc.reason or exc.status)


@contextlib.contextmanager
def translated(what: str, cluster: str) -> Iterator[None]:
    """Map kubernetes/urllib3 exceptions to ConflictError / KubernetesError."""
    try:
        yield
    except ApiException as exc:
        message = f"cluster '{cluster}': {what}: {_status_message(exc)}"
        status = exc.status or 0
        if status == 409 and "Apply failed" in message:
            hint = (
                " — another field manager changed these fields; re-run with forced "
                "conflicts (platform.kubernetes.force_conflicts: true) to take them back"
            )
            raise ConflictError(message + hint) from exc
        retryable = status in (409, 429) or status >= 500 or status == 0
        if status in (401, 403):
            message += " — check the kube context's credentials and RBAC"
        raise KubernetesError(message, retryable=retryable, retry_after=_retry_after(exc)) from exc
    except urllib3.exceptions.HTTPError as exc:
        msg = f"cluster '{cluster}': {what}: API server unreachable ({exc.__class__.__name__})"
        raise KubernetesError(msg, retryable=True) from exc


# --- what the server stores -------------------------------------------------------------

# Objects that carry isolation are compared whole: a field or rule anyone added (another
# field manager, a merge patch) is drift, and converge takes the object back (forced).
GUARDED_KINDS = frozenset(
    {
        "NetworkPolicy",
        "PeerAuthentication",
        "AuthorizationPolicy",
        "Role",
        "RoleBinding",
        "ResourceQuota",
        "LimitRange",
    }
)
# Of a Namespace, only the Pod Security Admission labels are guarded.
_POD_SECURITY = "pod-security.kubernetes.io/"
_NOT_CONTENT = ("apiVersion", "kind", "metadata", "status")
_LIMIT_QUANTITIES = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")
_QUANTITIES = frozenset({"ResourceQuota", "LimitRange"})  # kinds whose sizes are re-spelled


def _canonical(sizes: Any) -> Any:
    """A map of quantities in canonical form (compared by value, not by spelling)."""
    if not isinstance(sizes, dict):
        return sizes
    out = {}
    for name, value in sizes.items():
        try:
            out[name] = quantities.canonical(value)
        except ValueError:
            out[name] = value
    return out


def _quantities_canonical(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if obj.get("kind") == "ResourceQuota" and "hard" in spec:
        spec["hard"] = _canonical(spec["hard"])
    if obj.get("kind") == "LimitRange":
        for item in spec.get("limits") or []:
            for name in _LIMIT_QUANTITIES:
                if name in item:
                    item[name] = _canonical(item[name])


def _network_policy_defaults(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if "policyTypes" not in spec:
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in rule.get("ports") or []:
                port.setdefault("protocol", "TCP")


def _limit_range_defaults(obj: Obj) -> None:
    """Per resource: a missing default limit is the max, a missing default request the
    default limit, else the min (core/v1 `SetDefaults_LimitRangeItem`)."""
    for item in (obj.get("spec") or {}).get("limits") or []:
        if item.get("type") != "Container":
            continue
        default = {**(item.get("max") or {}), **(item.get("default") or {})}
        request = {
            **(item.get("min") or {}),
            **default,
            **(item.get("defaultRequest") or {}),
        }
        for name, sizes in (("default", default), ("defaultRequest", request)):
            if sizes:
                item[name] = sizes


def _priority_class_defaults(obj: Obj) -> None:
    obj.setdefault("preemptionPolicy", "PreemptLowerPriority")
    for name in ("globalDefault", "description"):
        if name in obj and not obj[name]:
            del obj[name]  # omitempty: a false or empty value is never stored


def _secret_defaults(obj: Obj) -> None:
    obj.setdefault("type", "Opaque")


def _binding_defaults(obj: Obj) -> None:
    for subject in obj.get("subjects") or []:
        if subject.get("kind") in ("User", "Group"):
            subject.setdefault("apiGroup", "rbac.authorization.k8s.io")


_DEFAULTS: dict[str, Callable[[Obj], None]] = {
    "NetworkPolicy": _network_policy_defaults,
    "LimitRange": _limit_range_defaults,
    "PriorityClass": _priority_class_defaults,
    "Secret": _secret_defaults,
    "RoleBinding": _binding_defaults,
}


def _copied(value: Any) -> Any:
    """A deep copy of JSON data: `copy.deepcopy` without its memo and dispatch, which
    cost most of a drift pass (every desired object of every tenant is copied once)."""
    if isinstance(value, dict):
        return {key: _copied(child) for key, child in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_copied(child) for child in value)
    return value


def _comparable(live: Mapping[str, Any]) -> Mapping[str, Any]:
    """The live object with its quantities canonical (its spec copied, when it has any)."""
    if live.get("kind") not in _QUANTITIES:
        return live
    copied: Obj = {**live, "spec": _copied(live.get("spec"))}
    _quantities_canonical(copied)
    return copied


def _as_stored(obj: Mapping[str, Any]) -> Obj:
    """`obj` as a kube-apiserver stores it: defaults filled in, quantities canonical.

    Comparing this (not the object as written) with the live object means nothing the
    server defaults, omits or re-spells is ever reported as drift.
    """
    kind = str(obj.get("kind"))
    defaults = _DEFAULTS.get(kind)
    if defaults is None and kind not in _QUANTITIES:
        return dict(obj)  # nothing to fill in or re-spell: no copy needed
    stored: Obj = _copied(dict(obj))
    _quantities_canonical(stored)
    if defaults is not None:
        defaults(stored)
    return stored


# --- field-level comparison ------------------------------------------------------------


def _leaves(value: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, value) of every leaf; lists and empty maps are leaves (atomic)."""
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from _leaves(child, (*prefix, str(key)))
    else:
        yield prefix, value


def _at(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return _MISSING
        obj = obj[part]
    return obj


class _Missing:
    def __repr__(self) -> str:
        return "<absent>"


_MISSING = _Missing()


def _owned(fields: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Leaf paths of a managedFields `fieldsV1` trie (list items count as their list)."""
    children = {k: v for k, v in fields.items() if k != "."}
    if not children or any(not k.startswith("f:") for k in children):
        yield prefix
        return
    for key, child in children.items():
        yield from _owned(child or {}, (*prefix, key[2:]))


def _managed(live: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return (live.get("metadata") or {}).get("managedFields") or []


def _unwanted(
    fields: Mapping[str, Any], want: Any, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Leaf paths of a `fieldsV1` trie that no leaf path of `want` leads to or through.

    Walks the trie along `want` instead of flattening both and comparing every pair of
    paths: on a converged object it finds nothing after a few dict lookups.
    """
    if not isinstance(want, dict) or not want:
        return []  # a wanted leaf: whatever is owned at or below it is wanted
    names = [k for k in fields if k != "."]
    if not names or any(not k.startswith("f:") for k in names):
        return []  # owned as a whole, and wanted paths go through it
    found: list[tuple[str, ...]] = []
    for key in names:
        name, child = key[2:], fields[key] or {}
        if name in want:
            found += _unwanted(child, want[name], (*prefix, name))
        else:
            found += _owned(child, (*prefix, name))
    return found


def _holds(want: Any, live: Any) -> bool:
    """Whether every leaf of `want` has its value in `live`, i.e. `_compare` finds no
    changed field: the quick answer for a converged object, with no path built."""
    if want == live:
        return True  # most subtrees (a spec as the server stores it) are equal as a whole
    if isinstance(want, dict) and want and isinstance(live, dict):
        return all(key in live and _holds(child, live[key]) for key, child in want.items())
    return False


def _owners(live: Mapping[str, Any]) -> dict[tuple[str, ...], dict[str, str]]:
    """Leaf path -> {manager: operation} owning it, from the live object's managedFields."""
    found: dict[tuple[str, ...], dict[str, str]] = {}
    for entry in _managed(live):
        for path in _owned(entry.get("fieldsV1") or {}):
            manager = str(entry.get("manager", ""))
            found.setdefault(path, {})[manager] = str(entry.get("operation", ""))
    return found


def _owners_below(
    owners: Mapping[tuple[str, ...], Mapping[str, str]], path: tuple[str, ...]
) -> dict[str, str]:
    """Managers owning `path` or anything inside it."""
    found: dict[str, str] = {}
    for owned, managers in owners.items():
        if owned[: len(path)] == path or path[: len(owned)] == owned:
            found.update(managers)
    return found


def _show(path: tuple[str, ...], value: Any, secret: bool) -> str:
    if value is _MISSING:
        return "<absent>"
    if secret and path[:1] == ("data",):
        return "<redacted>"
    return repr(value)


def _dotted(path: tuple[str, ...]) -> str:
    return "".join(f"[{p}]" if "." in p or "/" in p else f".{p}" for p in path)


def _unasked(want: Any, live: Any, prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Outermost paths of `live` with no counterpart in `want` (inside wanted maps)."""
    for key, child in live.items():
        path = (*prefix, key)
        if key not in want:
            yield path
        elif isinstance(child, dict) and isinstance(want[key], dict) and want[key]:
            yield from _unasked(want[key], child, path)
        # else a leaf of ours (a list, a scalar, an empty map): compared value by value


def _added(want: Mapping[str, Any], live: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Fields of a guarded object that nobody asked us for: drift, removed by converge."""
    kind = str(want.get("kind"))
    if kind == "Namespace":
        wanted = (want.get("metadata") or {}).get("labels") or {}
        labels = (live.get("metadata") or {}).get("labels") or {}
        return [
            ("metadata", "labels", name)
            for name in labels
            if name.startswith(_POD_SECURITY) and name not in wanted
        ]
    if kind not in GUARDED_KINDS:
        return []
    content = {k: v for k, v in live.items() if k not in _NOT_CONTENT}
    return list(_unasked(want, content, ()))


def _compare(key: _Key, want: Mapping[str, Any], live: Mapping[str, Any]) -> list[FieldDifference]:
    """Fields of `want` whose live value differs, fields we own but no longer want, and
    (guarded kinds) fields someone else added."""
    stored = _as_stored(want)
    live = _comparable(live)  # canonical quantities on both sides: compared by value
    seen = _Seen(key, live)
    found: list[FieldDifference] = []
    if not _holds(stored, live):
        changes = (seen.changed(path, value, _at(live, path)) for path, value in _leaves(stored))
        found = [d for d in changes if d is not None]
    ours = (e for e in _managed(live) if e.get("manager") == FIELD_MANAGER)  # Apply, Update
    for path in dict.fromkeys(p for e in ours for p in _unwanted(e.get("fieldsV1") or {}, stored)):
        have = _at(live, path)
        if have is not _MISSING:
            found.append(seen.dropped(path, have))
    reported = {d.path for d in found}
    found += [
        seen.added(path, _at(live, path))
        for path in _added(stored, live)
        if _dotted(path) not in reported
    ]
    return found


@dataclass(frozen=True)
class _Seen:
    """Builds the differences of one object, naming the managers that own each field."""

    key: _Key
    live: Mapping[str, Any]

    @functools.cached_property
    def owners(self) -> dict[tuple[str, ...], dict[str, str]]:
        """Who owns what: read only for a difference to report (most objects have none)."""
        return _owners(self.live)

    def _show(self, path: tuple[str, ...], value: Any) -> str:
        return _show(path, value, self.key[1] == "Secret")

    def changed(self, path: tuple[str, ...], want: Any, have: Any) -> FieldDifference | None:
        """A desired field whose live value differs (None when it does not)."""
        if have == want:
            return None
        others = {m: op for m, op in self.owners.get(path, {}).items() if m != FIELD_MANAGER}
        return FieldDifference(
            _target(self.key),
            _dotted(path),
            self._show(path, want),
            self._show(path, have),
            owner=", ".join(sorted(others)),
            contested=any(op == "Apply" for op in others.values()),
        )

    def dropped(self, path: tuple[str, ...], have: Any) -> FieldDifference:
        """A field we applied once and no longer want."""
        return FieldDifference(_target(self.key), _dotted(path), "<absent>", self._show(path, have))

    def added(self, path: tuple[str, ...], have: Any) -> FieldDifference:
        """A field someone else added to a guarded object."""
        others = _owners_below(self.owners, path)
        return FieldDifference(
            _target(self.key),
            _dotted(path),
            "<absent>",
            self._show(path, have),
            owner=", ".join(sorted(m for m in others if m != FIELD_MANAGER)),
            added=True,
        )


def _owned_by_us(live: Mapping[str, Any]) -> bool:
    entries = (live.get("metadata") or {}).get("managedFields")
    return entries is None or any(e.get("manager") == FIELD_MANAGER for e in entries)


def _removal(paths: Sequence[tuple[str, ...]], resource_version: str) -> Obj:
    """A JSON merge patch deleting `paths`, only if the object is still at that version."""
    body: Obj = {"metadata": {"resourceVersion": resource_version}}
    for path in paths:
        node = body
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = None
    return body


# --- live clusters ---------------------------------------------------------------------


class _Api:
    """JSON requests on one cluster through the official client's transport."""

    def __init__(self, api: k8s_client.ApiClient, cluster: str, timeout: float) -> None:
        self.api = api
        self.cluster = cluster
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        content_type: str | None = None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        method, url, headers, body, _ = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(
            method, url, header_params=headers, body=body, _request_timeout=self.timeout
        )
        response.read()  # type: ignore[no-untyped-call]
        types = {"200": "object", "201": "object", "202": "object"}
        return self.api.response_deserialize(response, types).data

    def list(self, kind: _Kind, labels: Mapping[str, str]) -> list[Obj]:
        """Every object of `kind` with `labels`, across namespaces (paged)."""
        items: list[Obj] = []
        token = ""
        while True:
            query: list[tuple[str, Any]] = [("labelSelector", _selector(labels)), ("limit", _PAGE)]
            if token:
                query.append(("continue", token))
            try:
                page = self.call("GET", kind.collection(), query=query)
            except ApiException as exc:
                if exc.status == 404:
                    return []
                raise
            for item in page.get("items") or []:
                items.append({"apiVersion": kind.api_version, "kind": kind.kind, **item})
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    def apply(self, obj: Mapping[str, Any], *, force: bool) -> Obj:
        kind = _kind_of(obj)
        _, _, namespace, name = _key(obj)
        query = [("fieldManager", FIELD_MANAGER), ("force", force)]
        result: Obj = self.call(
            "PATCH", kind.item(namespace, name), query=query, body=dict(obj), content_type=_APPLY
        )
        return result

    def merge_patch(self, key: _Key, body: Mapping[str, Any]) -> Obj:
        """A JSON merge patch (an Update by `tenantctl`): `null` deletes a field."""
        kind = KINDS[(key[0], key[1])]
        result: Obj = self.call(
            "PATCH",
            kind.item(key[2], key[3]),
            query=[("fieldManager", FIELD_MANAGER)],
            body=dict(body),
            content_type=_MERGE,
        )
        return result

    def delete(self, key: _Key) -> None:
        kind = KINDS[(key[0], key[1])]
        try:
            self.call(
                "DELETE",
                kind.item(key[2], key[3]),
                query=[("propagationPolicy", "Background")],
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def exists(self, key: _Key) -> bool:
        kind = KINDS[(key[0], key[1])]
        try:
            self.call("GET", kind.item(key[2], key[3]))
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True


def connect(kubeconfig: str, context: str, *, cluster: str) -> k8s_client.ApiClient:
    """An API client from a kubeconfig, or inside a pod from its service account.

    The service account is used only when no kubeconfig is named and none is found (the
    Helm chart's pods: `KUBERNETES_SERVICE_HOST` set, a token mounted).

    Raises:
        KubernetesError: neither is usable (the message names cluster and kubeconfig).
    """
    configuration = k8s_client.Configuration()
    # urllib3 would otherwise wait out a 429/503's Retry-After itself, inside the step and
    # holding the lease; the error goes to the runner, which schedules the retry instead.
    configuration.retries = urllib3.Retry(3, respect_retry_after_header=False)
    try:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig or None,
            context=context or None,
            client_configuration=configuration,
        )
        return k8s_client.ApiClient(configuration)
    except (ConfigException, OSError) as exc:
        if kubeconfig or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            msg = (
                f"cluster '{cluster}': cannot load kube context '{context or '(current)'}' "
                f"from {kubeconfig or 'the default kubeconfig'}: {exc}"
            )
            raise KubernetesError(msg) from exc
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        msg = f"cluster '{cluster}': cannot use the pod's service account: {exc}"
        raise KubernetesError(msg) from exc
    return k8s_client.ApiClient(configuration)


_Slot = tuple[str, tuple[str, str]]  # cluster, (apiVersion, kind)
_Labels = tuple[str | None, ...]  # the values of some label names, in their order


def _label_values(obj: Mapping[str, Any], names: Sequence[str]) -> _Labels:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return tuple(labels.get(name) for name in names)


class _Snapshot:
    """Lists shared by every scope during one pass: (cluster, kind) -> key -> object.

    Each list is also grouped by the values of the labels scopes select on (built on the
    first scope that asks, kept up to date by our writes), so a scope finds its few
    objects without scanning every tenant's: a pass over N tenants stays linear in N.
    Callers hold `lock`.
    """

    def __init__(self, inventory: Mapping[str, str], kinds: Sequence[_Kind] = ()) -> None:
        self.inventory = dict(inventory)
        self.kinds = tuple(kinds)  # listed together on each cluster a scope observes
        self.lists: dict[_Slot, dict[_Key, Obj]] = {}
        self.groups: dict[tuple[_Slot, tuple[str, ...]], dict[_Labels, dict[_Key, Obj]]] = {}
        self.lock = threading.Lock()

    def matching(self, slot: _Slot, selector: Mapping[str, str]) -> dict[_Key, Obj]:
        """The listed objects of `slot` carrying every label of `selector` (a copy)."""
        names = tuple(sorted(selector))
        groups = self.groups.get((slot, names))
        if groups is None:
            groups = {}
            for key, obj in self.lists[slot].items():
                groups.setdefault(_label_values(obj, names), {})[key] = obj
            self.groups[(slot, names)] = groups
        return dict(groups.get(tuple(selector[name] for name in names), {}))

    def remember(self, slot: _Slot, key: _Key, obj: Obj | None) -> None:
        """Our write of `key` (None: deleted), in the list and in its groups."""
        objects = self.lists.get(slot)
        if objects is None:
            return  # not listed yet: the list, when it comes, reads the write
        old = objects.pop(key, None)
        for (grouped, names), groups in self.groups.items():
            if grouped != slot:
                continue
            if old is not None:
                groups.get(_label_values(old, names), {}).pop(key, None)
            if obj is not None:
                groups.setdefault(_label_values(obj, names), {})[key] = obj
        if obj is not None:
            objects[key] = obj


class KubernetesClusters:
    """Live mode: converge scopes on the clusters named in platform.yaml.

    Args:
        contexts: cluster name -> kube context ("" = the kubeconfig's current context).
        kubeconfig: kubeconfig path ("" = $KUBECONFIG or ~/.kube/config).
        clients: ready ApiClients by cluster name (used instead of the kubeconfig).
        namespace_timeout: seconds `remove` waits for a namespace to terminate.
    """

    def __init__(
        self,
        contexts: Mapping[str, str],
        kubeconfig: str = "",
        *,
        clients: Mapping[str, k8s_client.ApiClient] | None = None,
        namespace_timeout: float = 60.0,
        request_timeout: float = 30.0,
    ) -> None:
        self._contexts = dict(contexts)
        self._kubeconfig = kubeconfig
        self._apis = {
            name: _Api(api, name, request_timeout) for name, api in (clients or {}).items()
        }
        self._timeout = request_timeout
        self._namespace_timeout = namespace_timeout
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    def _api(self, cluster: str) -> _Api:
        with self._lock:
            if cluster not in self._apis:
                self._apis[cluster] = _Api(self._connect(cluster), cluster, self._timeout)
            return self._apis[cluster]

    def _connect(self, cluster: str) -> k8s_client.ApiClient:
        if cluster not in self._contexts:
            where = SourceLocation("platform.yaml", None, f"platform.clusters.{cluster}")
            raise ConfigError([(where, f"no cluster '{cluster}' is configured")])
        return connect(self._kubeconfig, self._contexts[cluster], cluster=cluster)

    @contextlib.contextmanager
    def snapshot(
        self, inventory: Mapping[str, str], kinds: Sequence[tuple[str, str]] = ()
    ) -> Iterator[None]:
        """Observe in bulk: within this block each kind is listed once per cluster.

        `inventory` selects everything the control plane manages (e.g. managed-by);
        each scope then finds its own objects in the shared lists (grouped by the labels
        scopes select on). Our own writes update them. `kinds` (those every tenant has)
        are listed together when a scope first observes a cluster, so one wait covers them.
        """
        self._snapshot = _Snapshot(inventory, tuple(KINDS[k] for k in kinds))
        try:
            yield
        finally:
            self._snapshot = None

    def observe(self, scope: Scope) -> dict[_Key, Obj]:
        """Live objects of the scope, by identity: one labelled list per kind."""
        api = self._api(scope.cluster)
        kinds = [KINDS[kind_key] for kind_key in scope.kinds]
        self._fill(api, kinds)
        found: dict[_Key, Obj] = {}
        for kind in kinds:
            for key, obj in self._list(api, kind, scope.selector).items():
                if _matches(obj, scope.selector):
                    found[key] = obj
        return found

    def _fill(self, api: _Api, kinds: Sequence[_Kind]) -> None:
        """List what the snapshot lacks of `kinds` and of its own kinds all at once: one
        request in flight per kind (pages in turn), so a pass waits for the slowest list,
        not for their sum."""
        snap = self._snapshot
        if snap is None:
            return
        with snap.lock:
            wanted = {(api.cluster, (k.api_version, k.kind)): k for k in (*kinds, *snap.kinds)}
            missing = {slot: k for slot, k in wanted.items() if slot not in snap.lists}
            if len(missing) < 2:
                return  # one list: `_list` reads it on this thread
            with ThreadPoolExecutor(max_workers=min(len(missing), _LISTS_IN_FLIGHT)) as pool:
                lists = pool.map(lambda k: self._fetch(api, k, snap.inventory), missing.values())
                snap.lists.update(zip(missing, lists, strict=True))

    def _fetch(self, api: _Api, kind: _Kind, selector: Mapping[str, str]) -> dict[_Key, Obj]:
        with translated(f"list {kind.plural}", api.cluster):
            return {_key(o): o for o in api.list(kind, selector)}

    def _list(self, api: _Api, kind: _Kind, selector: Mapping[str, str]) -> dict[_Key, Obj]:
        snap = self._snapshot
        if snap is None:
            return self._fetch(api, kind, selector)
        slot = (api.cluster, (kind.api_version, kind.kind))
        with snap.lock:
            if slot not in snap.lists:
                snap.lists[slot] = self._fetch(api, kind, snap.inventory)
            return snap.matching(slot, selector)

    def _remember(self, cluster: str, key: _Key, obj: Obj | None) -> None:
        snap = self._snapshot
        if snap is None:
            return
        stored = None if obj is None else {"apiVersion": key[0], "kind": key[1], **obj}
        with snap.lock:
            snap.remember((cluster, (key[0], key[1])), key, stored)

    def differences(
        self, scope: Scope, desired: Sequence[Mapping[str, Any]]
    ) -> list[FieldDifference]:
        """Field-level differences between desired and live objects (no writes)."""
        live = self.observe(scope)
        found: list[FieldDifference] = []
        wanted = {_key(d): d for d in desired}
        for key, want in wanted.items():
            if key not in live:
                found.append(FieldDifference(_target(key), ".", "<object>", "<absent>"))
            else:
                found.extend(_compare(key, want, live[key]))
        for key, obj in live.items():
            if key not in wanted and _owned_by_us(obj):
                found.append(FieldDifference(_target(key), ".", "<absent>", "<object>"))
        return found

    def converge(
        self,
        scope: Scope,
        desired: Sequence[Mapping[str, Any]],
        *,
        force: bool = False,
        prune: bool = True,
    ) -> list[ObjectChange]:
        """Apply what differs, prune what is no longer wanted; no write when converged.

        Raises:
            ConflictError: a differing field belongs to another field manager and
                `force` is false.
            KubernetesError: the API server refused or failed a request.
        """
        api = self._api(scope.cluster)
        live = self.observe(scope)
        changes: list[ObjectChange] = []
        wanted = {_key(d): d for d in desired}
        for key, want in wanted.items():
            change = self._converge_object(api, key, want, live.get(key), force=force)
            if change is not None:
                changes.append(change)
        if prune:
            changes.extend(self._prune(api, live, wanted))
        return changes

    def _converge_object(
        self, api: _Api, key: _Key, want: Mapping[str, Any], live: Obj | None, *, force: bool
    ) -> ObjectChange | None:
        """Apply one object if it differs; then remove what someone added to a guarded one."""
        drift = _compare(key, want, live) if live is not None else None
        if drift == []:
            return None
        # Revert imperative edits of our fields; leave contests to an explicit force, except
        # on guarded objects, where isolation wins over another declarative owner.
        # A create never forces: an unlabelled object of the same name is not ours.
        guarded = key[1] in GUARDED_KINDS or key[1] == "Namespace"
        take_back = force or (
            drift is not None and (guarded or not any(d.contested for d in drift))
        )
        result = live
        if drift is None or any(not d.added for d in drift):
            with translated(f"apply {_target(key)}", api.cluster):
                result = api.apply(want, force=take_back)
        added = _added(_as_stored(want), result or {}) if drift is not None else []
        if added and result is not None:
            version = str((result.get("metadata") or {}).get("resourceVersion", ""))
            with translated(f"remove added fields of {_target(key)}", api.cluster):
                result = api.merge_patch(key, _removal(added, version))
        self._remember(api.cluster, key, result)
        detail = ", ".join(d.path for d in drift or [])
        return ObjectChange("update" if drift else "create", _target(key), detail)

    def _prune(
        self, api: _Api, live: Mapping[_Key, Obj], wanted: Mapping[_Key, Any]
    ) -> list[ObjectChange]:
        changes = []
        # Namespaces last: deleting one takes its contents with it.
        for key in sorted(set(live) - set(wanted), key=lambda k: k[1] == "Namespace"):
            if not _owned_by_us(live[key]):
                continue  # labelled like ours, but never applied by us: not ours to delete
            with translated(f"delete {_target(key)}", api.cluster):
                api.delete(key)
            self._remember(api.cluster, key, None)
            changes.append(ObjectChange("delete", _target(key), "no longer desired"))
        return changes

    def remove(self, scope: Scope) -> list[ObjectChange]:
        """Delete everything the scope owns; waits for namespaces to finish terminating.

        Raises:
            KubernetesError: (retryable) a namespace is still terminating after the wait.
        """
        api = self._api(scope.cluster)
        live = self.observe(scope)
        changes = self._prune(api, live, {})
        namespaces = [k for k in live if k[1] == "Namespace" and _owned_by_us(live[k])]
        self._wait_gone(api, namespaces)
        return changes

    def _wait_gone(self, api: _Api, keys: Sequence[_Key]) -> None:
        deadline = time.monotonic() + self._namespace_timeout
        pause = 0.05
        for key in keys:
            while True:
                with translated(f"read {_target(key)}", api.cluster):
                    if not api.exists(key):
                        break
                if time.monotonic() >= deadline:
                    msg = (
                        f"cluster '{api.cluster}': {_target(key)} is still terminating after "
                        f"{self._namespace_timeout:.0f}s (finalizers pending); will retry"
                    )
                    raise KubernetesError(msg, retryable=True, retry_after=5.0)
                time.sleep(pause)
                pause = min(pause * 2, 1.0)


# --- render mode -----------------------------------------------------------------------


class RenderedClusters:
    """Render mode: each scope's objects become `<out>/<tenant>/kubernetes/<component>.yaml`.

    Args:
        out_dir: root of the rendered tree (`OUT`).
        dump: objects -> YAML text (the same function `tenantctl render` uses).
        kustomization: file names -> kustomization.yaml text.
    """

    def __init__(
        self,
        out_dir: Path,
        dump: Callable[[Sequence[Mapping[str, Any]]], str],
        kustomization: Callable[[Sequence[str]], str],
    ) -> None:
        self.out_dir = out_dir
        self._dump = dump
        self._kustomization = kustomization

    @contextlib.contextmanager
    def snapshot(
        self, inventory: Mapping[str, str], kinds: Sequence[tuple[str, str]] = ()
    ) -> Iterator[None]:
        """Nothing to observe in bulk: files are read one by one."""
        del inventory, kinds
        yield

    def _file(self, scope: Scope) -> Path:
        return self.out_dir / scope.tenant_id / "kubernetes" / f"{scope.component}.yaml"

    def differences(
        self, scope: Scope, desired: Sequence[Mapping[str, Any]]
    ) -> list[FieldDifference]:
        """Whether the rendered file matches what would be written now."""
        path = self._file(scope)
        have = path.read_text() if path.exists() else None
        if have == self._dump(desired):
            return []
        if have is None:
            return [FieldDifference(str(path), ".", "<rendered>", "<absent>")]
        try:
            rendered = [d for d in yaml.load_all(have, Loader=_YAML_LOADER) if isinstance(d, dict)]
        except yaml.YAMLError:
            return [FieldDifference(str(path), ".", "<rendered>", "<not YAML>")]
        found = _file_differences({_key(d): d for d in desired}, _by_key(rendered))
        # Same objects, other bytes (order, formatting): still rewrite the file.
        return found or [FieldDifference(str(path), ".", "<rendered>", "<other formatting>")]

    def converge(
        self,
        scope: Scope,
        desired: Sequence[Mapping[str, Any]],
        *,
        force: bool = False,
        prune: bool = True,
    ) -> list[ObjectChange]:
        """Write the scope's file (only when its bytes change) and the kustomization."""
        del force, prune  # a file is replaced whole; nothing to conflict with
        path = self._file(scope)
        text = self._dump(desired)
        if path.exists() and path.read_text() == text:
            return []
        action = "update" if path.exists() else "create"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, text)
        self._write_kustomization(path.parent)
        return [ObjectChange(action, str(path), f"{len(desired)} object(s)")]

    def remove(self, scope: Scope) -> list[ObjectChange]:
        """Delete the scope's file (and the tenant's folder once it is empty)."""
        path = self._file(scope)
        if not path.exists():
            return []
        path.unlink()
        self._write_kustomization(path.parent)
        return [ObjectChange("delete", str(path))]

    def _write_kustomization(self, folder: Path) -> None:
        target = folder / "kustomization.yaml"
        files = sorted(p.name for p in folder.glob("*.yaml") if p.name != target.name)
        if files:
            _write(target, self._kustomization(files))
            return
        target.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()
            folder.parent.rmdir()


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _by_key(docs: Sequence[Mapping[str, Any]]) -> dict[_Key, Mapping[str, Any]]:
    found: dict[_Key, Mapping[str, Any]] = {}
    for doc in docs:
        with contextlib.suppress(KeyError, TypeError):
            found[_key(doc)] = doc
    return found


def _file_differences(
    wanted: Mapping[_Key, Mapping[str, Any]], rendered: Mapping[_Key, Mapping[str, Any]]
) -> list[FieldDifference]:
    """Field-level differences between the objects wanted and those in a rendered file."""
    found = [
        FieldDifference(_target(key), ".", "<absent>", "<not wanted>")
        for key in rendered
        if key not in wanted
    ]
    for key, want in wanted.items():
        have = rendered.get(key)
        if have is None:
            found.append(FieldDifference(_target(key), ".", "<rendered>", "<absent>"))
            continue
        paths = dict.fromkeys(p for p, _ in (*_leaves(dict(want)), *_leaves(dict(have))))
        found.extend(
            FieldDifference(
                _target(key), _dotted(path), _show(path, a, False), _show(path, b, False)
            )
            for path in paths
            if (a := _at(want, path)) != (b := _at(have, path))
        )
    return found


def _write(path: Path, text: str) -> None:
    """Replace `path` atomically, so a reader never sees half a file.

    The temporary file's name is unique: tenants converged in parallel all write the
    shared `_platform/` files, and a fixed name let one writer rename another's away.
    """
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as handle:
        handle.write(text)
    Path(handle.name).chmod(0o644)  # GitOps files, never secrets: readable like any file
    Path(handle.name).replace(path)
