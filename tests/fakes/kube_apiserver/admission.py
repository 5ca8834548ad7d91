"""Admission of a write request body: identity, what clients may not set, unknown fields.

Every write path (create, update, patch, apply) runs its incoming object through `prepare`,
which does what the real apiserver's decoding does before any merge: check the name and
namespace against the URL, drop server-owned metadata, prune (or refuse) fields the schema does
not declare, and canonicalise quantities.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.kube_apiserver import errors, pruning, quantities
from tests.fakes.kube_apiserver.registry import ResourceType

CLIENT_IGNORED_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "generation",
    "selfLink",
    "deletionGracePeriodSeconds",
)


@dataclass(frozen=True)
class WriteOptions:
    """Per-request options of a write."""

    manager: str
    dry_run: bool = False
    force: bool = False
    field_validation: str = "Warn"
    warnings: list[str] = field(default_factory=list, compare=False)


def prepare(
    rtype: ResourceType,
    namespace: str,
    body: Any,
    options: WriteOptions,
    *,
    name_from_url: str | None,
) -> dict[str, Any]:
    """Check the identity of a request body and drop what clients may not set."""
    if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
        msg = "the body of the request must be a JSON object with object metadata"
        raise errors.bad_request(msg)
    obj = copy.deepcopy(body)
    meta = obj.setdefault("metadata", {})
    if not meta.get("name") and meta.get("generateName") and name_from_url is None:
        meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
    problem = identity_problem(rtype, meta, namespace, name_from_url)
    if problem:
        raise errors.bad_request(problem)
    if name_from_url is not None:
        meta["name"] = name_from_url
    if rtype.namespaced:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    for server_field in CLIENT_IGNORED_METADATA:
        meta.pop(server_field, None)
    obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
    drop_unknown_fields(rtype, obj, options)
    return dict(quantities.canonicalize(obj, rtype.schema()))


def carry_server_fields(rtype: ResourceType, current: dict[str, Any], obj: dict[str, Any]) -> None:
    """Server-owned metadata and the status subresource survive writes to the object."""
    for name in (
        "uid",
        "creationTimestamp",
        "resourceVersion",
        "generation",
        "deletionTimestamp",
    ):
        if name in current["metadata"]:
            obj["metadata"][name] = current["metadata"][name]
    if rtype.has_status:
        if "status" in current:
            obj["status"] = current["status"]
        else:
            obj.pop("status", None)
    if rtype.kind == "Namespace":
        obj["spec"] = current.get("spec", {})


def drop_unknown_fields(rtype: ResourceType, obj: dict[str, Any], options: WriteOptions) -> None:
    """Prune undeclared fields; Strict refuses them, Warn reports them in `options.warnings`."""
    unknown = pruning.prune(obj, rtype.schema())
    if not unknown or options.field_validation == "Ignore":
        return
    if options.field_validation == "Strict":
        names = ", ".join(f'unknown field "{u}"' for u in unknown)
        msg = (
            f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: '
            f"strict decoding error: {names}"
        )
        raise errors.bad_request(msg)
    options.warnings.extend(f'unknown field "{u}"' for u in unknown)


def identity_problem(
    rtype: ResourceType, meta: dict[str, Any], namespace: str, name_from_url: str | None
) -> str:
    if name_from_url is not None and meta.get("name", name_from_url) != name_from_url:
        return (
            f"the name of the object ({meta['name']}) does not match the name on the URL "
            f"({name_from_url})"
        )
    if rtype.namespaced and meta.get("namespace", namespace) != namespace:
        return (
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    return ""


def apply_body_problem(body: Any) -> str:
    if not isinstance(body, dict):
        return "apply patch must be an object"
    for required in ("apiVersion", "kind"):
        if not body.get(required):
            return f"invalid object type: {required} is required for apply"
    if (body.get("metadata") or {}).get("managedFields"):
        return "metadata.managedFields must be nil"
    return ""
