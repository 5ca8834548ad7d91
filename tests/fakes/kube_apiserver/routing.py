"""URL routing of the fake apiserver: discovery, collections, items, subresources, watches.

Kept apart from the HTTP plumbing (server.py) so that every route is a plain function of the
store and a decoded `Request`, returning a `Response` or raising `ApiError`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.kube_apiserver import discovery, errors, selectors, storage
from tests.fakes.kube_apiserver.admission import WriteOptions
from tests.fakes.kube_apiserver.faults import Faults
from tests.fakes.kube_apiserver.registry import ResourceType
from tests.fakes.kube_apiserver.storage import Store

PATCH_TYPES = (storage.APPLY, storage.STRATEGIC, storage.MERGE, storage.JSON_PATCH)
WATCH_LIMIT_SECONDS = 60.0


@dataclass(frozen=True)
class Request:
    """A decoded request: what a route needs to answer it."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any
    manager: str


@dataclass
class Response:
    """What a route returns: status code and JSON body."""

    code: int
    body: Any
    content_type: str = "application/json"
    warnings: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """A resource URL, decoded."""

    rtype: ResourceType
    namespace: str | None  # None: all namespaces (or cluster-scoped)
    name: str = ""
    subresource: str = ""


def resolve(store: Store, path: str) -> Target | None:
    """Decode `/api/v1/...` or `/apis/<g>/<v>/...` into a Target (None if unknown)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    registry = store.registry
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces" and registry.lookup(group, version, rest[2]):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    rtype = registry.lookup(group, version, rest[0])
    if rtype is None or (namespace is not None and not rtype.namespaced):
        return None
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in (*rtype.subresources, "finalize"):
        return None
    if rtype.namespaced and name and namespace is None:
        return None
    return Target(rtype, namespace, name, sub)


def route(store: Store, request: Request, faults: Faults | None = None) -> Response:
    """Answer one (non-watch) request."""
    target = resolve(store, request.path)
    failure = _injected(faults, request, target)
    if failure is not None:
        return failure
    if request.method == "GET":
        found = _discovery(store, request.path)
        if found is not None:
            return found
    if target is None:
        raise errors.path_not_found()
    options = _write_options(request)
    if not target.name:
        response = _collection(store, request, target, options)
    else:
        response = _item(store, request, target, options)
    response.warnings = tuple(options.warnings)
    return response


def injected(store: Store, request: Request, faults: Faults | None) -> Response | None:
    """The injected failure for this request, if any rule matches (consumes the rule)."""
    return _injected(faults, request, resolve(store, request.path))


def _injected(faults: Faults | None, request: Request, target: Target | None) -> Response | None:
    if faults is None:
        return None
    described = None
    if target is not None:
        verb = _verb(request.method, collection=not target.name)
        if request.query.get("watch", "").lower() in ("true", "1"):
            verb = "watch"
        described = (target.rtype, target.namespace or "", target.name, verb)
    found = faults.match(request.method, request.path, described)
    if found is None:
        return None
    return Response(int(found.status["code"]), found.status, headers=found.headers)


def _write_options(request: Request) -> WriteOptions:
    query, content_type = request.query, request.content_type
    dry_run = query.get("dryRun", "")
    if dry_run not in ("", "All"):
        detail = f'"{dry_run}": supported values: "All"'
        raise errors.invalid_options("dryRun", "Unsupported value", detail)  # noqa: EM101
    force = query.get("force", "").lower() == "true"
    is_apply = request.method == "PATCH" and content_type == storage.APPLY
    if is_apply and not query.get("fieldManager"):
        detail = "is required for apply patch"
        raise errors.invalid_options("fieldManager", "Required value", detail)  # noqa: EM101
    if force and not is_apply:
        detail = "may not be specified for non-apply patch"
        raise errors.invalid_options("force", "Forbidden", detail)  # noqa: EM101
    validation = query.get("fieldValidation") or "Warn"
    if validation not in ("Strict", "Warn", "Ignore"):
        msg = f"invalid fieldValidation directive {validation!r}: must be Ignore, Warn or Strict"
        raise errors.bad_request(msg)
    return WriteOptions(
        manager=request.manager,
        dry_run=dry_run == "All",
        force=force,
        field_validation=validation,
    )


def _discovery(store: Store, path: str) -> Response | None:  # noqa: PLR0911 - a route table
    registry = store.registry
    clean = "/" + path.strip("/")
    fixed: dict[str, Any] = {
        "/version": discovery.VERSION,
        "/api": discovery.core_versions(),
        "/apis": discovery.group_list(registry),
        "/openapi/v3": discovery.openapi_v3_index(registry),
    }
    if clean in fixed:
        return Response(200, fixed[clean])
    if clean in ("/healthz", "/readyz", "/livez"):
        return Response(200, "ok", "text/plain")
    parts = clean.strip("/").split("/")
    if clean.startswith("/openapi/v3/"):
        doc = discovery.openapi_v3_document(registry, clean.removeprefix("/openapi/v3/"))
        return Response(200, doc) if doc else None
    if parts[0] == "api" and len(parts) == 2:
        doc = discovery.resource_list(registry, "", parts[1])
        return Response(200, doc) if doc else None
    if parts[0] == "apis" and len(parts) == 2:
        doc = discovery.group(registry, parts[1])
        return Response(200, doc) if doc else None
    if parts[0] == "apis" and len(parts) == 3:
        doc = discovery.resource_list(registry, parts[1], parts[2])
        return Response(200, doc) if doc else None
    return None


def _collection(store: Store, request: Request, target: Target, options: WriteOptions) -> Response:
    rtype, method = target.rtype, request.method
    if method == "GET":
        return _list(store, target, request.query)
    if method == "POST" and (target.namespace is not None or not rtype.namespaced):
        return Response(201, store.create(rtype, target.namespace or "", request.body, options))
    if method == "DELETE" and rtype.kind != "Namespace":
        selector = request.query.get("labelSelector")
        return Response(200, store.delete_collection(rtype, target.namespace, selector, options))
    raise errors.method_not_allowed(rtype, _verb(method, collection=True))


def _list(store: Store, target: Target, query: dict[str, str]) -> Response:
    """A LIST, paged by `limit`/`continue`: the token is an offset (no snapshots kept).

    Each item is encoded straight from the store (no copy first), as a real apiserver
    serializes its watch cache: a LIST of many objects costs their encoding.
    """
    rtype = target.rtype
    token, limit = query.get("continue") or "", query.get("limit") or ""
    start = int(token) if token.isdigit() else 0
    # Items of a built-in kind's List carry no apiVersion/kind; a custom resource's do.
    typed = ("apiVersion", "kind") if not rtype.is_custom else ()

    def encoded(obj: dict[str, Any]) -> str:
        shown = {k: v for k, v in obj.items() if k not in typed}
        if not typed:
            shown["apiVersion"] = rtype.api_version
        return json.dumps(shown)

    try:
        items, rv, remaining = store.list_page(
            rtype,
            target.namespace,
            encoded,
            label_selector=query.get("labelSelector"),
            field_selector=query.get("fieldSelector"),
            start=start,
            limit=int(limit) if limit.isdigit() else 0,
        )
    except selectors.SelectorError as exc:
        raise errors.bad_request(str(exc)) from exc
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if remaining:
        meta |= {"continue": str(start + len(items)), "remainingItemCount": remaining}
    head = {"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version, "metadata": meta}
    return Response(200, json.dumps(head)[:-1] + ', "items": [' + ", ".join(items) + "]}")


def _item(store: Store, request: Request, target: Target, options: WriteOptions) -> Response:
    rtype, method, body = target.rtype, request.method, request.body
    key = (target.namespace or "", target.name)
    if target.subresource:
        return _subresource(store, request, target, options)
    if method == "GET":
        return Response(200, store.read(rtype, *key))
    if method == "PUT":
        return Response(200, store.replace(rtype, key, body, options))
    if method == "PATCH":
        if request.content_type not in PATCH_TYPES:
            raise errors.unsupported_media_type(request.content_type)
        obj, created = store.patch(rtype, key, request.content_type, body, options)
        return Response(201 if created else 200, obj)
    if method == "DELETE":
        return Response(200, store.delete(rtype, key, options))
    raise errors.method_not_allowed(rtype, _verb(method, collection=False))


def _subresource(store: Store, request: Request, target: Target, options: WriteOptions) -> Response:
    """`status` (GET, PUT of the status only) and `namespaces/<n>/finalize` (PUT)."""
    rtype, key, body = target.rtype, (target.namespace or "", target.name), request.body
    if request.method == "GET":
        return Response(200, store.read(rtype, *key))
    if request.method == "PUT" and isinstance(body, dict):
        if target.subresource == "finalize":
            return Response(200, store.finalize_namespace(target.name, body, options))
        return Response(200, store.write_status(rtype, key, body.get("status"), options))
    if request.method == "PATCH" and target.subresource == "status":
        if request.content_type not in PATCH_TYPES[1:]:
            raise errors.unsupported_media_type(request.content_type)
        current = store.read(rtype, *key)
        patched = store.preview_patch(rtype, current, request.content_type, body)
        status = patched.get("status") if isinstance(patched, dict) else None
        return Response(200, store.write_status(rtype, key, status, options))
    raise errors.method_not_allowed(rtype, _verb(request.method, collection=False))


def _verb(method: str, *, collection: bool) -> str:
    verbs = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    if collection:
        verbs = {**verbs, "GET": "list", "DELETE": "deletecollection"}
    return verbs.get(method, method.lower())


def watch_events(
    store: Store, target: Target, query: dict[str, str], stopping: threading.Event
) -> Iterator[dict[str, Any]]:
    """Watch events (ADDED for existing objects first when no resourceVersion is given)."""
    rtype = target.rtype
    labels = selectors.parse_labels(query.get("labelSelector"))
    fields = selectors.parse_fields(query.get("fieldSelector"))
    seconds = float(query.get("timeoutSeconds") or WATCH_LIMIT_SECONDS)
    deadline = time.monotonic() + min(seconds, WATCH_LIMIT_SECONDS)

    def matches(obj: dict[str, Any]) -> bool:
        meta = obj["metadata"]
        in_ns = target.namespace is None or meta.get("namespace", "") == target.namespace
        return in_ns and labels(meta.get("labels") or {}) and fields(obj)

    since = query.get("resourceVersion") or "0"
    last = int(since) if since.isdigit() else 0
    if 0 < last < store.forgotten_before:
        expired = errors.status(
            410, "Expired", f"too old resource version: {last} ({store.forgotten_before})", {}
        )
        yield {"type": "ERROR", "object": expired.status}
        return
    if last == 0:
        items, last = store.list_objects(rtype, target.namespace)
        for item in items:
            if matches(item):
                yield {"type": "ADDED", "object": item}
    while not stopping.is_set() and time.monotonic() < deadline:
        with store.changed:
            store.changed.wait(timeout=0.1)
            fresh = [e for e in store.events if e.resource_version > last]
        for event in fresh:
            last = event.resource_version
            if event.storage_key == rtype.storage_key and matches(event.obj):
                obj = {**event.obj, "apiVersion": rtype.api_version}
                yield {"type": event.type, "object": obj}
