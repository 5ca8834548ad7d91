"""Server-side defaults and light validation, as the real apiserver applies them on writes.

Defaults matter to clients that diff desired against live objects: a real server adds
`policyTypes` to NetworkPolicies, `type: Opaque` to Secrets, `preemptionPolicy` to
PriorityClasses and so on, and a fake that did not would hide drift-detection bugs.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

from tests.fakes.kube_apiserver import crd_validation, errors
from tests.fakes.kube_apiserver.registry import ResourceType

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_MAX_LABEL = 63
_MAX_SUBDOMAIN = 253
_RBAC = "rbac.authorization.k8s.io"


def apply_defaults(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """Fill in the defaults the real apiserver would (in place)."""
    _omit_empty(obj)
    spec = obj.get("spec")
    if rtype.kind == "Namespace":
        name = obj["metadata"]["name"]
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    elif rtype.kind == "Secret":
        obj.setdefault("type", "Opaque")
        _fold_string_data(obj)
    elif rtype.kind == "PriorityClass":
        _default_priority_class(obj)
    elif rtype.kind == "NetworkPolicy" and isinstance(spec, dict):
        _default_network_policy(spec)
    elif rtype.kind in ("RoleBinding", "ClusterRoleBinding"):
        for subject in obj.get("subjects") or []:
            if subject.get("kind") in ("User", "Group"):
                subject.setdefault("apiGroup", _RBAC)
    elif rtype.kind in _BY_KIND and isinstance(spec, dict):
        _BY_KIND[rtype.kind](obj, spec)


def _default_limits(_obj: dict[str, Any], spec: dict[str, Any]) -> None:
    for item in spec.get("limits") or []:
        _default_limit(item)


def _accept_names(crd: dict[str, Any], spec: dict[str, Any]) -> None:
    """The apiextensions controllers' verdict, at once: names accepted, CRD established."""
    conditions = [
        {"type": kind, "status": "True", "reason": reason, "message": message}
        for kind, reason, message in (
            ("NamesAccepted", "NoConflicts", "no conflicts found"),
            ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        )
    ]
    stored = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    crd["status"] = {
        "conditions": conditions,
        "acceptedNames": spec.get("names") or {},
        "storedVersions": stored,
    }


def _omit_empty(obj: dict[str, Any]) -> None:
    """Go's `omitempty`: empty maps and lists are not serialised, so they vanish."""
    meta = obj.get("metadata") or {}
    for name in ("labels", "annotations", "finalizers", "ownerReferences"):
        if name in meta and not meta[name]:
            del meta[name]
    for name in ("data", "binaryData", "stringData"):
        if name in obj and not obj[name]:
            del obj[name]


_BY_KIND: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {
    "LimitRange": _default_limits,
    "CustomResourceDefinition": _accept_names,
}


def _default_priority_class(obj: dict[str, Any]) -> None:
    obj.setdefault("preemptionPolicy", "PreemptLowerPriority")
    for name in ("globalDefault", "description"):
        if name in obj and not obj[name]:
            del obj[name]  # plain bool/string with omitempty: false and "" are never stored


def _fold_string_data(secret: dict[str, Any]) -> None:
    """`stringData` is write-only: the server base64-encodes it into `data`."""
    plain = secret.pop("stringData", None) or {}
    if plain:
        data = secret.setdefault("data", {})
        for key, value in plain.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _default_network_policy(spec: dict[str, Any]) -> None:
    if "policyTypes" not in spec:
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in rule.get("ports") or []:
                port.setdefault("protocol", "TCP")


def _default_limit(item: dict[str, Any]) -> None:
    """Per resource name, as core/v1 `SetDefaults_LimitRangeItem` does for containers."""
    if item.get("type") != "Container":
        return
    default = item.setdefault("default", {})
    request = item.setdefault("defaultRequest", {})
    for name, value in (item.get("max") or {}).items():
        default.setdefault(name, value)  # no default limit: the max
    for name, value in default.items():
        request.setdefault(name, value)  # no default request: the default limit
    for name, value in (item.get("min") or {}).items():
        request.setdefault(name, value)  # ... else the min
    for field in ("default", "defaultRequest"):
        if not item[field]:
            del item[field]  # an empty map is omitted


def validate(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """Reject what the real apiserver rejects most often (names, labels, required fields).

    Raises:
        ApiError: 422 Invalid with one cause per problem.
    """
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    causes: list[tuple[str, str, str]] = []
    causes += _name_problems(rtype, name)
    for key, value in (meta.get("labels") or {}).items():
        causes += _label_problems(key, value)
    causes += _kind_problems(rtype, obj)
    if rtype.crd is not None:
        causes += _custom_problems(rtype, obj)
    if causes:
        raise errors.invalid(rtype, name, causes)


def _name_problems(rtype: ResourceType, name: str) -> list[tuple[str, str, str]]:
    if not name:
        return [("FieldValueRequired", "metadata.name", "name or generateName is required")]
    label_like = rtype.kind == "Namespace"
    pattern, limit = (
        (_DNS1123_LABEL, _MAX_LABEL) if label_like else (_DNS1123_SUBDOMAIN, _MAX_SUBDOMAIN)
    )
    if len(name) > limit or not pattern.match(name):
        what = "RFC 1123 label" if label_like else "RFC 1123 subdomain"
        detail = (
            f'"{name}": a lowercase {what} must consist of lower case alphanumeric characters, '
            "'-' or '.', and must start and end with an alphanumeric character"
        )
        return [("FieldValueInvalid", "metadata.name", detail)]
    return []


def _label_problems(key: str, value: Any) -> list[tuple[str, str, str]]:
    name = key.rsplit("/", 1)[-1]
    prefix = key.rsplit("/", 1)[0] if "/" in key else ""
    problems: list[tuple[str, str, str]] = []
    bad_prefix = bool(prefix) and not _DNS1123_SUBDOMAIN.match(prefix)
    if len(name) > _MAX_LABEL or not _LABEL_NAME.match(name) or bad_prefix:
        detail = f"\"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.'"
        problems.append(("FieldValueInvalid", "metadata.labels", detail))
    if not isinstance(value, str) or len(value) > _MAX_LABEL or not _LABEL_VALUE.match(value):
        detail = (
            f'"{value}": a valid label must be an empty string or consist of alphanumeric '
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )
        problems.append(("FieldValueInvalid", "metadata.labels", detail))
    return problems


def _custom_problems(rtype: ResourceType, obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    """A custom resource against its CRD's schema (metadata has its own rules above)."""
    assert rtype.crd is not None
    for entry in rtype.crd["spec"]["versions"]:
        if entry["name"] == rtype.version:
            root = (entry.get("schema") or {}).get("openAPIV3Schema") or {}
            content = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
            schema = {**root, "properties": {**(root.get("properties") or {})}}
            schema["properties"].pop("metadata", None)
            return crd_validation.problems(schema, content, "")
    return []


def _kind_problems(rtype: ResourceType, obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    if rtype.kind in ("RoleBinding", "ClusterRoleBinding") and not obj.get("roleRef"):
        return [("FieldValueRequired", "roleRef", "")]
    if rtype.kind == "PriorityClass" and "value" not in obj:
        return [("FieldValueRequired", "value", "")]
    if rtype.kind in ("Role", "ClusterRole"):
        return [
            ("FieldValueRequired", f"rules[{i}].verbs", "verbs must contain at least one value")
            for i, rule in enumerate(obj.get("rules") or [])
            if not rule.get("verbs")
        ]
    return []


def validate_update(rtype: ResourceType, current: dict[str, Any], obj: dict[str, Any]) -> None:
    """Immutable fields: what the real apiserver refuses to change in an update.

    Raises:
        ApiError: 422 Invalid (a client must delete and recreate the object instead).
    """
    name = str(obj["metadata"]["name"])
    causes: list[tuple[str, str, str]] = []
    if rtype.kind in ("RoleBinding", "ClusterRoleBinding") and obj.get("roleRef") != current.get(
        "roleRef"
    ):
        causes.append(
            ("FieldValueInvalid", "roleRef", f"{_go(obj.get('roleRef'))}: cannot change roleRef")
        )
    if rtype.kind == "PriorityClass" and obj.get("value") != current.get("value"):
        causes.append(("FieldValueForbidden", "value", "may not be changed in an update."))
    if rtype.kind in ("ConfigMap", "Secret") and current.get("immutable"):
        for field in ("data", "binaryData", "immutable"):
            if obj.get(field) != current.get(field):
                detail = "field is immutable when `immutable` is set"
                causes.append(("FieldValueForbidden", field, detail))
    if causes:
        raise errors.invalid(rtype, name, causes)


def _go(value: Any) -> str:
    """A value roughly as Go's `%v` prints a struct in validation messages."""
    if isinstance(value, dict):
        return "{" + " ".join(str(v) for v in value.values()) + "}"
    return str(value)
