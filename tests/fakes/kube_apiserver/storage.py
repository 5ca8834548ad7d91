"""The fake's object store: one cluster's objects, resourceVersions, events and namespaces.

Every write goes through `_persist`, which owns the invariants a client can observe: one
cluster-wide resourceVersion counter bumped only by real changes (no-op writes are not
persisted), `generation` bumped only by spec changes, server-owned metadata, defaults,
dry-run, the event log that feeds watches, and namespace termination (Terminating phase,
contents deleted, then the namespace removed after `termination_delay` seconds).

Tests may call the public methods directly (`get`, `apply`, `edit`, ...) to play another
client, for example a person editing a managed field with `kubectl edit`.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from tests.fakes.kube_apiserver import (
    admission,
    defaulting,
    errors,
    managing,
    namespaces,
    patching,
    selectors,
)
from tests.fakes.kube_apiserver.admission import WriteOptions
from tests.fakes.kube_apiserver.clock import utc_now
from tests.fakes.kube_apiserver.registry import Registry, ResourceType, default_registry

T = TypeVar("T")

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
APPLY = "application/apply-patch+yaml"
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@dataclass(frozen=True)
class Event:
    """One change, as a watch reports it."""

    resource_version: int
    type: str
    storage_key: tuple[str, str]
    obj: dict[str, Any]


class Store:
    """Objects of one fake cluster, safe to use from the server's threads and from tests."""

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        termination_delay: float | None = 0.2,
        seed: bool = True,
    ) -> None:
        self.registry = registry or default_registry().copy()
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.events: list[Event] = []
        self.event_log_size = 5000
        self.forgotten_before = 0  # events up to this resourceVersion are no longer kept
        self._objects: dict[tuple[str, str], dict[Key, dict[str, Any]]] = {}
        self._rv = 0
        self.namespaces = namespaces.NamespaceController(self, termination_delay)
        self.namespace_defaults = True
        if seed:
            self.namespaces.seed()

    # ----------------------------------------------------------------- reads
    @property
    def resource_version(self) -> int:
        """The current cluster-wide resourceVersion."""
        return self._rv

    def rtype(self, kind: str, api_version: str | None = None) -> ResourceType:
        """Resolve a Kind, plural or short name (for tests)."""
        return self.registry.by_kind(kind, api_version)

    def read(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        """A copy of one object, served in `rtype`'s version.

        Raises:
            ApiError: 404 NotFound.
        """
        with self.lock:
            found = self._bucket(rtype).get((namespace, name))
            if found is None:
                raise errors.not_found(rtype, name)
            return self._present(rtype, found)

    def list_objects(
        self,
        rtype: ResourceType,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Matching objects ordered by namespace then name, and the list resourceVersion."""
        items, rv, _ = self.list_page(
            rtype,
            namespace,
            lambda obj: self._present(rtype, obj),
            label_selector=label_selector,
            field_selector=field_selector,
        )
        return items, rv

    def list_page(
        self,
        rtype: ResourceType,
        namespace: str | None,
        present: Callable[[dict[str, Any]], T],
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        start: int = 0,
        limit: int = 0,
    ) -> tuple[list[T], int, int]:
        """`limit` matching objects from `start` (0: all), each as `present` makes it out of
        the stored object (under the lock, so it must copy or encode, never keep it), the
        list resourceVersion, and how many matching objects follow the page.

        Only the page is presented: like a real apiserver reading one chunk per request,
        a paged LIST of N objects costs N copies, not N per page.
        """
        labels = selectors.parse_labels(label_selector)
        fields = selectors.parse_fields(field_selector)
        with self.lock:
            matching = [
                obj
                for (ns, _), obj in sorted(self._bucket(rtype).items())
                if (namespace is None or ns == namespace)
                and labels(obj["metadata"].get("labels") or {})
                and fields(obj)
            ]
            end = start + limit if limit else len(matching)
            page = [present(obj) for obj in matching[start:end]]
            return page, self._rv, max(0, len(matching) - end)

    def get(self, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        """Test helper: the stored object, or None."""
        rtype = self.rtype(kind)
        with self.lock:
            found = self._bucket(rtype).get((namespace if rtype.namespaced else "", name))
            return self._present(rtype, found) if found else None

    def objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Test helper: all stored objects of a kind (optionally in one namespace)."""
        return self.list_objects(self.rtype(kind), namespace)[0]

    # ---------------------------------------------------------------- writes
    def create(
        self, rtype: ResourceType, namespace: str, body: dict[str, Any], options: WriteOptions
    ) -> dict[str, Any]:
        """POST: a new object.

        Raises:
            ApiError: 409 AlreadyExists, 404 missing namespace, 403 terminating, 422 Invalid.
        """
        obj = admission.prepare(rtype, namespace, body, options, name_from_url=None)
        if rtype.has_status:
            obj.pop("status", None)  # written only through the status subresource
        name = obj["metadata"]["name"]
        with self.lock:
            self._check_namespace(rtype, namespace, name)
            if (namespace, name) in self._bucket(rtype):
                raise errors.already_exists(rtype, name)
            defaulting.apply_defaults(rtype, obj)  # decoding defaults: the writer owns them
            managing.update(None, obj, write=self._write(rtype, options))
            return self._persist(rtype, None, obj, options)

    def replace(
        self,
        rtype: ResourceType,
        key: Key,
        body: dict[str, Any],
        options: WriteOptions,
    ) -> dict[str, Any]:
        """PUT: replace the whole object (optimistic concurrency on resourceVersion)."""
        obj = admission.prepare(rtype, key[0], body, options, name_from_url=key[1])
        with self.lock:
            current = self._current(rtype, key)
            wanted_rv = body.get("metadata", {}).get("resourceVersion")
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                raise errors.stale(rtype, key[1])
            admission.carry_server_fields(rtype, current, obj)
            defaulting.apply_defaults(rtype, obj)  # decoding defaults: the writer owns them
            managing.update(current, obj, write=self._write(rtype, options))
            return self._persist(rtype, current, obj, options)

    def patch(
        self,
        rtype: ResourceType,
        key: Key,
        patch_type: str,
        body: Any,
        options: WriteOptions,
    ) -> tuple[dict[str, Any], bool]:
        """PATCH of any type; returns (object, created) since apply may create."""
        with self.lock:
            current = self._bucket(rtype).get(key)
            if patch_type == APPLY:
                return self._apply(rtype, key, current, body, options)
            if current is None:
                raise errors.not_found(rtype, key[1])
            current = copy.deepcopy(current)
            patched = self._patched(rtype, current, patch_type, body)
            wanted_rv = (
                (body.get("metadata") or {}).get("resourceVersion")
                if isinstance(body, dict)
                else None
            )
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                raise errors.stale(rtype, key[1])
            obj = admission.prepare(rtype, key[0], patched, options, name_from_url=key[1])
            admission.carry_server_fields(rtype, current, obj)
            defaulting.apply_defaults(rtype, obj)  # decoding defaults: the writer owns them
            managing.update(current, obj, write=self._write(rtype, options))
            return self._persist(rtype, current, obj, options), False

    def preview_patch(
        self, rtype: ResourceType, current: dict[str, Any], patch_type: str, body: Any
    ) -> Any:
        """`current` with a (non-apply) patch applied, nothing persisted."""
        return self._patched(rtype, current, patch_type, body)

    def _patched(
        self, rtype: ResourceType, current: dict[str, Any], patch_type: str, body: Any
    ) -> Any:
        try:
            if patch_type == JSON_PATCH:
                return patching.json_patch(current, body)
            if patch_type == MERGE:
                return patching.merge_patch(current, body)
            if patch_type == STRATEGIC and not rtype.is_custom:
                return patching.strategic_merge(current, body, rtype.schema())
        except patching.PatchError as exc:
            if exc.code == 422:
                raise errors.invalid(
                    rtype, current["metadata"]["name"], [("FieldValueInvalid", "", str(exc))]
                ) from exc
            raise errors.bad_request(str(exc)) from exc
        raise errors.unsupported_media_type(patch_type)

    def _apply(
        self,
        rtype: ResourceType,
        key: Key,
        current: dict[str, Any] | None,
        body: Any,
        options: WriteOptions,
    ) -> tuple[dict[str, Any], bool]:
        problem = admission.apply_body_problem(body)
        if problem:
            raise errors.bad_request(problem)
        config = admission.prepare(rtype, key[0], body, options, name_from_url=key[1])
        if current is None:
            self._check_namespace(rtype, key[0], key[1])
        merged = managing.apply(
            current, config, write=self._write(rtype, options), force=options.force
        )
        if current is not None:
            admission.carry_server_fields(rtype, current, merged)
        return self._persist(rtype, current, merged, options), current is None

    def delete(self, rtype: ResourceType, key: Key, options: WriteOptions) -> dict[str, Any]:
        """DELETE: a Status for a removed object, or the object if it must wait (finalizers)."""
        with self.lock:
            current = self._current(rtype, key)
            if rtype.kind == "Namespace":
                return self.namespaces.delete(rtype, current, options)
            if current["metadata"].get("finalizers"):
                return self._mark_deleted(rtype, current, options)
            if not options.dry_run:
                self._remove(rtype, key)
            meta = current["metadata"]
            details: dict[str, Any] = {
                "name": meta["name"],
                "kind": rtype.plural,
                "uid": meta["uid"],
            }
            if rtype.group:
                details["group"] = rtype.group
            return {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            }

    def delete_collection(
        self,
        rtype: ResourceType,
        namespace: str | None,
        label_selector: str | None,
        options: WriteOptions,
    ) -> dict[str, Any]:
        """DELETE on a collection: removes every match, returns them as a List."""
        items, _ = self.list_objects(rtype, namespace, label_selector=label_selector)
        for item in items:
            meta = item["metadata"]
            self.delete(rtype, (meta.get("namespace", ""), meta["name"]), options)
        return {
            "kind": f"{rtype.kind}List",
            "apiVersion": rtype.api_version,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def write_status(
        self, rtype: ResourceType, key: Key, status: Any, options: WriteOptions
    ) -> dict[str, Any]:
        """PUT .../status: replace only the status."""
        with self.lock:
            current = self._current(rtype, key)
            obj = copy.deepcopy(current)
            if status is None:
                obj.pop("status", None)
            else:
                obj["status"] = status
            return self._persist(rtype, current, obj, options)

    def finalize_namespace(
        self, name: str, body: dict[str, Any], options: WriteOptions
    ) -> dict[str, Any]:
        """PUT namespaces/<n>/finalize: set `spec.finalizers` (the namespace controller's call)."""
        ns_type = self.rtype("Namespace")
        with self.lock:
            current = self._current(ns_type, ("", name))
            obj = copy.deepcopy(current)
            obj["spec"] = {"finalizers": list((body.get("spec") or {}).get("finalizers") or [])}
            result = self._persist(ns_type, current, obj, options)
            if not options.dry_run and current["metadata"].get("deletionTimestamp"):
                self.namespaces.finalize(name)
            return result

    # ------------------------------------------------------------ test helpers
    def apply(self, obj: dict[str, Any], *, manager: str, force: bool = False) -> dict[str, Any]:
        """Test helper: server-side apply `obj` as `manager` (as a client would)."""
        rtype = self.rtype(obj["kind"], obj.get("apiVersion"))
        meta = obj["metadata"]
        key = (meta.get("namespace", "") if rtype.namespaced else "", meta["name"])
        return self.patch(rtype, key, APPLY, obj, WriteOptions(manager, force=force))[0]

    def edit(
        self,
        kind: str,
        name: str,
        namespace: str = "",
        *,
        change: Callable[[dict[str, Any]], None],
        manager: str = "kubectl-edit",
    ) -> dict[str, Any]:
        """Test helper: an Update by `manager` after `change` mutates the object in place."""
        rtype = self.rtype(kind)
        key = (namespace if rtype.namespaced else "", name)
        with self.lock:
            obj = self._present(rtype, self._current(rtype, key))
            change(obj)
            return self.replace(rtype, key, obj, WriteOptions(manager))

    def put(self, obj: dict[str, Any], *, manager: str = "kubectl-create") -> dict[str, Any]:
        """Test helper: create `obj` as an Update by `manager` (like `kubectl create`)."""
        rtype = self.rtype(obj["kind"], obj.get("apiVersion"))
        namespace = obj["metadata"].get("namespace", "") if rtype.namespaced else ""
        return self.create(rtype, namespace, obj, WriteOptions(manager))

    def remove(self, kind: str, name: str, namespace: str = "") -> dict[str, Any]:
        """Test helper: DELETE as a client would."""
        rtype = self.rtype(kind)
        return self.delete(
            rtype, (namespace if rtype.namespaced else "", name), WriteOptions("test")
        )

    def finish_namespace_deletions(self) -> None:
        """Test helper: run the namespace controller now for every terminating namespace."""
        self.namespaces.finish_all()

    def close(self) -> None:
        """Cancel pending namespace-controller timers."""
        self.namespaces.close()

    # -------------------------------------------------------------- internals
    def _bucket(self, rtype: ResourceType) -> dict[Key, dict[str, Any]]:
        return self._objects.setdefault(rtype.storage_key, {})

    def _present(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        out["apiVersion"] = rtype.api_version
        return out

    def _current(self, rtype: ResourceType, key: Key) -> dict[str, Any]:
        found = self._bucket(rtype).get(key)
        if found is None:
            raise errors.not_found(rtype, key[1])
        return copy.deepcopy(found)

    def _write(self, rtype: ResourceType, options: WriteOptions) -> managing.Write:
        return managing.Write(
            manager=options.manager,
            api_version=rtype.api_version,
            schema=rtype.schema(),
            now=utc_now(),
            skip_status=rtype.has_status,
        )

    def _check_namespace(self, rtype: ResourceType, namespace: str, name: str) -> None:
        if not rtype.namespaced:
            return
        ns = self._bucket(self.rtype("Namespace")).get(("", namespace))
        if ns is None:
            raise errors.namespace_not_found(namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.terminating(rtype, name, namespace)

    def _persist(
        self,
        rtype: ResourceType,
        current: dict[str, Any] | None,
        obj: dict[str, Any],
        options: WriteOptions,
    ) -> dict[str, Any]:
        """Finish a write: server fields, defaults, validation, no-op check, store, event."""
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        if current is None:
            self._stamp_new(rtype, obj)
        defaulting.apply_defaults(rtype, obj)
        defaulting.validate(rtype, obj)
        if current is not None:
            defaulting.validate_update(rtype, current, obj)
            self._bump_generation(rtype, current, obj)
            if _same(current, obj):
                return self._present(rtype, current)
        if options.dry_run:
            return self._present(rtype, obj)
        meta = obj["metadata"]
        if _finalized(rtype, current, meta):
            self._remove(rtype, (meta.get("namespace", ""), meta["name"]))
            return self._present(rtype, obj)
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        self._bucket(rtype)[(meta.get("namespace", ""), meta["name"])] = obj
        self._emit("ADDED" if current is None else "MODIFIED", rtype, obj)
        if rtype.kind == "CustomResourceDefinition":
            self.registry.serve(obj)
        if current is None and rtype.kind == "Namespace" and self.namespace_defaults:
            self.namespaces.populate(meta["name"])
        return self._present(rtype, obj)

    def _stamp_new(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = utc_now()
        if rtype.has_generation:
            meta["generation"] = 1
        if rtype.kind == "Namespace":
            obj["spec"] = {"finalizers": [namespaces.NAMESPACE_CONTENT_FINALIZER]}
            obj["status"] = {"phase": "Active"}

    def _bump_generation(
        self, rtype: ResourceType, current: dict[str, Any], obj: dict[str, Any]
    ) -> None:
        if not rtype.has_generation:
            return

        def spec_of(o: dict[str, Any]) -> dict[str, Any]:
            return {
                k: v for k, v in o.items() if k not in ("metadata", "status", "apiVersion", "kind")
            }

        generation = int(current["metadata"].get("generation", 1))
        obj["metadata"]["generation"] = generation + (spec_of(current) != spec_of(obj))

    def _emit(self, kind: str, rtype: ResourceType, obj: dict[str, Any]) -> None:
        self.events.append(Event(self._rv, kind, rtype.storage_key, copy.deepcopy(obj)))
        if len(self.events) > self.event_log_size:
            dropped = self.events[: -self.event_log_size]
            self.forgotten_before = dropped[-1].resource_version
            del self.events[: -self.event_log_size]
        self.changed.notify_all()

    def _remove(self, rtype: ResourceType, key: Key) -> None:
        obj = self._bucket(rtype).pop(key, None)
        if obj is None:
            return
        if rtype.kind == "CustomResourceDefinition":
            # Its objects go with it (the real server deletes them first, finalizers aside).
            self.registry.withdraw(obj)
            self._objects.pop((obj["spec"]["group"], obj["spec"]["names"]["plural"]), None)
        self._rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._emit("DELETED", rtype, obj)

    def _mark_deleted(
        self, rtype: ResourceType, current: dict[str, Any], options: WriteOptions
    ) -> dict[str, Any]:
        if current["metadata"].get("deletionTimestamp"):
            return self._present(rtype, current)
        obj = copy.deepcopy(current)
        obj["metadata"]["deletionTimestamp"] = utc_now()
        obj["metadata"]["deletionGracePeriodSeconds"] = 0
        return self._persist(rtype, current, obj, options)

    def _storage_types(self) -> Iterator[ResourceType]:
        seen: set[tuple[str, str]] = set()
        for rtype in self.registry.types:
            if rtype.namespaced and rtype.storage_key not in seen:
                seen.add(rtype.storage_key)
                yield rtype

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store lock (for tests that inspect several objects consistently)."""
        with self.lock:
            yield


def _finalized(rtype: ResourceType, current: dict[str, Any] | None, meta: dict[str, Any]) -> bool:
    """An object waiting for deletion whose last finalizer was just removed."""
    if current is None or rtype.kind == "Namespace":
        return False
    return bool(meta.get("deletionTimestamp")) and not meta.get("finalizers")


def _same(current: dict[str, Any], obj: dict[str, Any]) -> bool:
    """True when a write changes nothing (resourceVersion aside)."""

    def strip(o: dict[str, Any]) -> dict[str, Any]:
        out = dict(o)
        out["metadata"] = {k: v for k, v in o["metadata"].items() if k != "resourceVersion"}
        out.pop("apiVersion", None)
        return out

    return strip(current) == strip(obj)
