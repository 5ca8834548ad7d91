"""Tenant custom resources on a cluster: list, watch, finalizer and status writes.

The Kubernetes source of the reconciler (service/crd_source.py) reads Tenant objects and
writes back only two things: the finalizer in `metadata.finalizers` (a JSON merge patch
guarded by the object's resourceVersion, so a concurrent change is a retryable conflict,
never a lost update) and `status` through the status subresource. It uses the official
client's typed `CustomObjectsApi` and its `watch.Watch`; every SDK exception is
translated by the Kubernetes driver's one boundary (`kubernetes.translated`), and the
API client comes from its `connect` (kubeconfig, or the pod's service account).

`rbac_rules` is what this module needs on the cluster; the Helm chart's ClusterRole is
checked against it and `kubernetes.rbac_rules` (`wiring.rbac_rules` joins them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client as k8s_client
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from controlplane.drivers.kubernetes import translated
from controlplane.errors import KubernetesError

__all__ = ["TenantEvent", "TenantObjects", "rbac_rules"]

_MERGE = "application/merge-patch+json"

Obj = dict[str, Any]


@dataclass(frozen=True)
class TenantEvent:
    """One watch event: ADDED, MODIFIED, DELETED, or EXPIRED (relist: the version is gone)."""

    type: str
    obj: Obj


class TenantObjects:
    """Tenant objects of one cluster (`group`/`version`/`plural` of the Tenant CRD).

    Args:
        api: the cluster's API client.
        resource: (group, version, plural) of the Tenant custom resource.
        cluster: the cluster's name in messages.
    """

    def __init__(
        self,
        api: k8s_client.ApiClient,
        resource: tuple[str, str, str],
        *,
        cluster: str = "shared",
        request_timeout: float = 30.0,
    ) -> None:
        self._objects = k8s_client.CustomObjectsApi(api)
        self._group, self._version, self._plural = resource
        self._cluster = cluster
        self._timeout = request_timeout

    def _args(self) -> tuple[str, str, str]:
        return self._group, self._version, self._plural

    def list_objects(self) -> tuple[list[Obj], str]:
        """Every Tenant object and the list's resourceVersion (to watch from)."""
        with translated(f"list {self._plural}", self._cluster):
            page = cast(
                Obj,
                self._objects.list_cluster_custom_object(
                    *self._args(), _request_timeout=self._timeout
                ),
            )
        version = str((page.get("metadata") or {}).get("resourceVersion") or "")
        return list(page.get("items") or []), version

    def get(self, name: str) -> Obj | None:
        """One Tenant object, or None when it is gone."""
        with translated(f"read {self._plural}/{name}", self._cluster):
            try:
                found = self._objects.get_cluster_custom_object(
                    *self._args(), name, _request_timeout=self._timeout
                )
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
        return cast(Obj, found)

    def watch(self, resource_version: str, timeout: int) -> Iterator[TenantEvent]:
        """Changes after `resource_version`, for at most `timeout` seconds.

        A version the server no longer keeps yields one EXPIRED event: list again.
        """
        stream = k8s_watch.Watch()  # type: ignore[no-untyped-call]
        with translated(f"watch {self._plural}", self._cluster):
            for event in stream.stream(  # type: ignore[no-untyped-call]
                self._objects.list_cluster_custom_object,
                *self._args(),
                resource_version=resource_version,
                timeout_seconds=timeout,
                allow_watch_bookmarks=False,
            ):
                kind, obj = str(event.get("type")), event.get("raw_object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        yield TenantEvent("EXPIRED", obj)
                        return
                    msg = f"cluster '{self._cluster}': watch {self._plural}: {obj.get('message')}"
                    raise KubernetesError(msg, retryable=True)
                yield TenantEvent(kind, obj)

    def set_finalizers(self, obj: Mapping[str, Any], finalizers: list[str]) -> Obj:
        """Replace `metadata.finalizers`, only if the object is still at its version."""
        meta = obj.get("metadata") or {}
        body = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        return self._patch(str(meta["name"]), body, status=False)

    def write_status(self, name: str, status: Mapping[str, Any]) -> Obj:
        """Merge `status` into the object's status subresource."""
        return self._patch(name, {"status": dict(status)}, status=True)

    def _patch(self, name: str, body: Obj, *, status: bool) -> Obj:
        what = f"{'write status of' if status else 'patch'} {self._plural}/{name}"
        call = (
            self._objects.patch_cluster_custom_object_status
            if status
            else self._objects.patch_cluster_custom_object
        )
        with translated(what, self._cluster):
            result = call(
                *self._args(),
                name,
                body,
                _content_type=_MERGE,
                _request_timeout=self._timeout,
            )
        return cast(Obj, result)


def rbac_rules(group: str, plural: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(apiGroup, resource, verbs) `TenantObjects` uses: the Helm chart's ClusterRole."""
    return [
        (group, plural, ("get", "list", "patch", "watch")),
        (group, f"{plural}/status", ("get", "patch")),
    ]
