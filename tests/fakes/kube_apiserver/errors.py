"""`Status` error bodies, worded like kube-apiserver's (k8s.io/apimachinery `errors.go`).

Clients branch on `code` and `reason`, and people read `message`, so every failure the fake
can produce is built here, once, in the real format.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.kube_apiserver.registry import ResourceType


class ApiError(Exception):
    """A failed request; `status` is the `Status` body and `status["code"]` the HTTP code."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(status["message"])
        self.status = status

    @property
    def code(self) -> int:
        """The HTTP status code."""
        return int(self.status["code"])

    @property
    def reason(self) -> str:
        """The Status reason (NotFound, Conflict, ...)."""
        return str(self.status["reason"])


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> ApiError:
    """Build an `ApiError` with a `Status` body."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return ApiError(body)


def _details(rtype: ResourceType, name: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": rtype.plural}
    if rtype.group:
        details["group"] = rtype.group
    return {**details, **extra}


def not_found(rtype: ResourceType, name: str) -> ApiError:
    """404: `<gr> "<name>" not found`."""
    return status(
        404, "NotFound", f'{rtype.group_resource} "{name}" not found', _details(rtype, name)
    )


def namespace_not_found(name: str) -> ApiError:
    """404 for a namespaced request into a namespace that does not exist."""
    return status(
        404, "NotFound", f'namespaces "{name}" not found', {"name": name, "kind": "namespaces"}
    )


def path_not_found() -> ApiError:
    """404 for an unknown URL."""
    return status(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(rtype: ResourceType, name: str) -> ApiError:
    """409 AlreadyExists on a create of an existing name."""
    message = f'{rtype.group_resource} "{name}" already exists'
    return status(409, "AlreadyExists", message, _details(rtype, name))


def stale(rtype: ResourceType, name: str) -> ApiError:
    """409 Conflict on a write with an outdated `metadata.resourceVersion`."""
    message = (
        f'Operation cannot be fulfilled on {rtype.group_resource} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    return status(409, "Conflict", message, _details(rtype, name))


def namespace_finalizing(name: str) -> ApiError:
    """409 on a second DELETE of a namespace that is still terminating."""
    message = (
        f'Operation cannot be fulfilled on namespaces "{name}": The system is ensuring all '
        "content is removed from this namespace.  Upon completion, this namespace will "
        "automatically be purged by the system."
    )
    return status(409, "Conflict", message, {"name": name, "kind": "namespaces"})


def terminating(rtype: ResourceType, name: str, namespace: str) -> ApiError:
    """403 on a create inside a terminating namespace."""
    message = (
        f'{rtype.group_resource} "{name}" is forbidden: unable to create new content in '
        f"namespace {namespace} because it is being terminated"
    )
    cause = {
        "reason": "NamespaceTerminating",
        "message": f"namespace {namespace} is being terminated",
        "field": "metadata.namespace",
    }
    return status(403, "Forbidden", message, _details(rtype, name, causes=[cause]))


def forbidden(rtype: ResourceType, name: str, *, user: str, verb: str, namespace: str) -> ApiError:
    """403 as an RBAC denial would word it."""
    where = f' in the namespace "{namespace}"' if namespace else ""
    target = f'{rtype.group_resource} "{name}"' if name else rtype.group_resource
    message = (
        f'{target} is forbidden: User "{user}" cannot {verb} resource "{rtype.plural}" '
        f'in API group "{rtype.group}"{where}'
    )
    return status(403, "Forbidden", message, _details(rtype, name))


def invalid(rtype: ResourceType, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid; each cause is (reason, field, detail), e.g. FieldValueRequired."""
    words = {
        "FieldValueRequired": "Required value",
        "FieldValueInvalid": "Invalid value",
        "FieldValueNotSupported": "Unsupported value",
        "FieldValueDuplicate": "Duplicate value",
        "FieldValueForbidden": "Forbidden",
        "FieldValueTooLong": "Too long",
        "FieldValueTooMany": "Too many",
    }
    parts = [f"{fld}: {words.get(reason, reason)}: {detail}" for reason, fld, detail in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    message = f'{rtype.qualified_kind} "{name}" is invalid: {summary}'
    details = {
        "name": name,
        "kind": rtype.kind,
        "causes": [
            {"reason": reason, "message": f"{words.get(reason, reason)}: {detail}", "field": fld}
            for reason, fld, detail in causes
        ],
    }
    if rtype.group:
        details["group"] = rtype.group
    return status(422, "Invalid", message, details)


def invalid_options(field_name: str, word: str, detail: str) -> ApiError:
    """422 on bad request options (fieldManager missing, force on non-apply, dryRun value)."""
    message = f'PatchOptions.meta.k8s.io "" is invalid: {field_name}: {word}: {detail}'
    cause = {"reason": "FieldValueRequired", "message": f"{word}: {detail}", "field": field_name}
    details = {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [cause]}
    return status(422, "Invalid", message, details)


def bad_request(message: str) -> ApiError:
    """400 BadRequest."""
    return status(400, "BadRequest", message, {})


def method_not_allowed(rtype: ResourceType, verb: str) -> ApiError:
    """405 for a verb the resource does not support."""
    message = f'{verb} is not supported on resources of kind "{rtype.group_resource}"'
    details: dict[str, Any] = {"kind": rtype.plural}
    if rtype.group:
        details["group"] = rtype.group
    return status(405, "MethodNotAllowed", message, details)


def unsupported_media_type(content_type: str) -> ApiError:
    """415 for a patch type the resource cannot take (strategic merge on CRDs)."""
    del content_type
    message = (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )
    return status(415, "UnsupportedMediaType", message, {})


def unauthorized() -> ApiError:
    """401 for a missing or wrong bearer token."""
    return status(401, "Unauthorized", "Unauthorized", {})


def apply_conflict(conflicts: list[tuple[str, str]], describe: dict[str, str]) -> ApiError:
    """409 for server-side apply conflicts; `conflicts` is (manager key, field path) pairs.

    `describe` maps a manager key to its printed form: `"mgr"` for an Apply owner,
    `"mgr" using v1 at <time>` for an Update owner (apiserver `printManager`).
    """
    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {describe[m]}", "field": p}
        for m, p in conflicts
    ]
    if len(conflicts) == 1:
        manager, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {describe[manager]}: {path}"
    else:
        lines: list[str] = []
        for manager in sorted({m for m, _ in conflicts}, key=lambda m: describe[m]):
            lines.append(f"conflicts with {describe[manager]}:")
            lines.extend(f"- {p}" for m, p in conflicts if m == manager)
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return status(409, "Conflict", message, {"causes": causes})
