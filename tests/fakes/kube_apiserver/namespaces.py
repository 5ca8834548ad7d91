"""The namespace controller and what every cluster and namespace starts with.

Deleting a namespace is asynchronous on a real cluster: the namespace turns Terminating, the
controller deletes its contents (objects with finalizers wait for them), then the namespace
disappears. Clients that "wait for termination" are tested against exactly that order.
"""

from __future__ import annotations

import copy
import threading
from typing import TYPE_CHECKING, Any

from tests.fakes.kube_apiserver import errors, schemas
from tests.fakes.kube_apiserver.admission import WriteOptions
from tests.fakes.kube_apiserver.clock import utc_now
from tests.fakes.kube_apiserver.registry import ResourceType

if TYPE_CHECKING:
    from tests.fakes.kube_apiserver.storage import Store

NAMESPACE_CONTENT_FINALIZER = "kubernetes"
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)
SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")


class NamespaceController:
    """Namespace termination and the objects controllers add, for one store."""

    def __init__(self, store: Store, termination_delay: float | None) -> None:
        self.store = store
        self.termination_delay = termination_delay
        self._timers: list[threading.Timer] = []

    def delete(
        self, rtype: ResourceType, current: dict[str, Any], options: WriteOptions
    ) -> dict[str, Any]:
        """DELETE of a namespace: Terminating now, contents and namespace gone later."""
        name = current["metadata"]["name"]
        if current["metadata"].get("deletionTimestamp"):
            raise errors.namespace_finalizing(name)
        obj = copy.deepcopy(current)
        obj["metadata"]["deletionTimestamp"] = utc_now()
        obj["status"] = {"phase": "Terminating"}
        result = self.store._persist(rtype, current, obj, options)
        if not options.dry_run:
            self._schedule(name)
        return result

    def _schedule(self, namespace: str) -> None:
        if self.termination_delay is None:
            return
        timer = threading.Timer(self.termination_delay, self.finalize, args=(namespace,))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def finalize(self, namespace: str) -> None:
        """The namespace controller: delete the contents, then purge the namespace."""
        with self.store.lock:
            ns_type = self.store.rtype("Namespace")
            if ("", namespace) not in self.store._bucket(ns_type):
                return
            remaining = 0
            for rtype in self.store._storage_types():
                for key in [k for k in self.store._bucket(rtype) if k[0] == namespace]:
                    if self.store._bucket(rtype)[key]["metadata"].get("finalizers"):
                        self.store._mark_deleted(
                            rtype,
                            copy.deepcopy(self.store._bucket(rtype)[key]),
                            WriteOptions("namespace-controller"),
                        )
                        remaining += 1
                    else:
                        self.store._remove(rtype, key)
            if remaining:
                self._schedule(namespace)
                return
            self.store._remove(ns_type, ("", namespace))

    def populate(self, namespace: str) -> None:
        """What controllers add to every namespace: ServiceAccount default, kube-root-ca.crt."""
        controller = WriteOptions("kube-controller-manager")
        sa = {"metadata": {"name": "default", "namespace": namespace}}
        self.store.create(self.store.rtype("ServiceAccount"), namespace, sa, controller)
        cm = {
            "metadata": {
                "name": "kube-root-ca.crt",
                "namespace": namespace,
                "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION},
            },
            "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nFAKE\n-----END CERTIFICATE-----\n"},
        }
        self.store.create(self.store.rtype("ConfigMap"), namespace, cm, controller)

    def seed(self) -> None:
        """What every cluster has: the system namespaces and the CRDs the fake serves."""
        system = WriteOptions("kube-apiserver")
        for name in SYSTEM_NAMESPACES:
            self.store.create(
                self.store.rtype("Namespace"), "", {"metadata": {"name": name}}, system
            )
        crd_type = self.store.rtype("CustomResourceDefinition")
        for crd in schemas.crd_documents():
            self.store.create(crd_type, "", crd, WriteOptions("helm"))

    def finish_all(self) -> None:
        """Run the controller now for every terminating namespace."""
        ns_type = self.store.rtype("Namespace")
        for obj in list(self.store._bucket(ns_type).values()):
            if obj["metadata"].get("deletionTimestamp"):
                self.finalize(obj["metadata"]["name"])

    def close(self) -> None:
        """Cancel pending timers."""
        for timer in self._timers:
            timer.cancel()
