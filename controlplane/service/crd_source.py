"""Tenant objects on a cluster as the desired state: `tenantctl reconcile --source kubernetes`.

Argo CD or Flux sync tenant files as `Tenant` objects (`tenantctl crd` prints the CRD):
`spec` is what a tenant file holds under `tenant:`, `metadata.name` its id, and
`tenant_of` reads an object back as a tenant file (validated exactly like one, errors
naming `tenants.tenantctl.io/<name>`). This source runs the same flows as a file
apply (`operations.apply`) for each object and writes the outcome back to its status
subresource: conditions Ready / Reconciling / Drifted / Failed (reason, message), the
operation's current step, and `observedGeneration`, which Argo CD health checks and
Flux's kstatus read. A finalizer (`FINALIZER`) makes the deletion of a Tenant object
wait for the delete flow (`offboarding.delete`: protection check, verified export,
suspend); the object goes once it succeeded.

Why the client's own watch and not kopf: kopf talks to the API server through its own
aiohttp client (not the official client the drivers use), runs an asyncio loop of its
own, keeps handler progress and retries in annotations and asks for its own peering
CRDs. The engine already owns all of that — per-tenant leases, recorded step progress,
retry with backoff, resume after a crash — so the source needs only list + watch, a
finalizer and a status write: ~200 lines on `CustomObjectsApi` and `watch.Watch`,
behind the same error translation and kubeconfig handling as the Kubernetes driver.

The loop is level-based: it lists every object (and repairs drift for all of them in
one bulk pass, `resync` seconds apart), then follows the watch from the list's
resourceVersion; an expired version lists again. A status is written only when it
changes, so a converged fleet costs no writes.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from controlplane import wiring
from controlplane.config import loading
from controlplane.config.loading import TenantSource
from controlplane.drivers.tenant_resources import TenantObjects
from controlplane.engine.operating import Outcome
from controlplane.engine.running import StepEvent
from controlplane.errors import ConfigError, ControlPlaneError, NotFoundError, SourceLocation
from controlplane.models.platform import PlatformConfig
from controlplane.resources.kubernetes import tenant_crd
from controlplane.service import fleets, offboarding, operations
from controlplane.service.operations import ApplyOutcome
from controlplane.service.sessions import Session

__all__ = [
    "FINALIZER",
    "KubernetesSource",
    "definition",
    "open_source",
    "tenant_of",
    "to_object",
]

log = logging.getLogger(__name__)

FINALIZER = "tenantctl.io/delete-flow"
# Recorded statuses after the delete flow: the object may go (restore/purge stay commands).
_GONE = frozenset({"deleted", "restoring", "purging", "purged"})
Obj = dict[str, Any]


def definition() -> dict[str, Any]:
    """The `Tenant` CustomResourceDefinition (`tenantctl crd`)."""
    return dict(tenant_crd.definition())


def to_object(source: TenantSource) -> dict[str, Any]:
    """The Tenant object of a tenant file (`spec` is what the file has under `tenant:`)."""
    return dict(tenant_crd.to_object(source.tenant))


def tenant_of(obj: Mapping[str, Any], platform: PlatformConfig) -> TenantSource:
    """The Tenant object as a tenant file (`tenant: <spec>`), validated like one.

    Raises:
        ConfigError: the spec is not a valid tenant (file `tenants.tenantctl.io/<name>`).
    """
    name = str((obj.get("metadata") or {}).get("name") or "")
    file = f"{tenant_crd.CRD_NAME}/{name}"
    text = yaml.safe_dump({"tenant": obj.get("spec") or {}}, sort_keys=False)
    source = loading.load_tenant_text(text, file, platform)
    if source.tenant.id != name:
        where = SourceLocation(file, None, "metadata.name")
        raise ConfigError([(where, f"must equal spec.id '{source.tenant.id}'")])
    return source


def open_source(
    session: Session, platform: PlatformConfig, *, cluster: str = "shared"
) -> KubernetesSource:
    """The Tenant objects on `cluster` (platform.clusters) as this session's source."""
    return KubernetesSource(session, platform, wiring.tenant_objects(platform, cluster))


class KubernetesSource:
    """Reconcile Tenant objects: onboard/converge, finalize deletions, write status.

    Args:
        session: the state store and drivers to run flows with.
        platform: the platform config every tenant is validated against.
        objects: the cluster's Tenant objects (driver).
    """

    def __init__(
        self,
        session: Session,
        platform: PlatformConfig,
        objects: TenantObjects,
    ) -> None:
        self._steps: dict[str, str] = {}
        self._lock = threading.Lock()
        self.session = dataclasses.replace(session, on_event=self._on_event(session.on_event))
        self.platform = platform
        self.objects = objects
        self._seen: dict[str, Obj] = {}

    def _on_event(self, chained: Callable[[StepEvent], None]) -> Callable[[StepEvent], None]:
        def note(event: StepEvent) -> None:
            chained(event)
            if event.status == "running":
                with self._lock:
                    self._steps[event.tenant_id] = event.step
                obj = self._seen.get(event.tenant_id)
                if obj is not None:
                    self._write(obj, _progress(obj, event.step))

        return note

    # -- one pass ------------------------------------------------------------------------

    def reconcile_all(self, *, repair_drift: bool = True) -> tuple[list[ApplyOutcome], str]:
        """Every Tenant object once (drift repaired in one bulk pass); the list's version."""
        items, version = self.objects.list_objects()
        live = [o for o in items if not _deleting(o)]
        verdicts = [self.reconcile(o) for o in items if _deleting(o)]
        verdicts += self._converge(live, repair_drift=repair_drift)
        return verdicts, version

    def reconcile(self, obj: Obj) -> ApplyOutcome:
        """One Tenant object: finalize its deletion, or converge it."""
        if _deleting(obj):
            return self._finalize(obj)
        return self._converge([obj], repair_drift=False)[0]

    def _converge(self, items: Sequence[Obj], *, repair_drift: bool) -> list[ApplyOutcome]:
        verdicts: dict[str, ApplyOutcome] = {}
        sources: list[TenantSource] = []
        for item in items:
            name = _name(item)
            obj = self._with_finalizer(item)
            try:
                sources.append(tenant_of(obj, self.platform))
            except ConfigError as exc:
                self._write(obj, _status(obj, _Report("invalid", exc.message)))
                verdicts[name] = ApplyOutcome(
                    name, "invalid", message=exc.message, exit_code=exc.exit_code
                )
                continue
            self._seen[name] = obj
        if sources:
            for outcome in self._apply(sources, repair_drift=repair_drift):
                obj = self._seen.pop(outcome.tenant_id)
                self._write(obj, self._outcome_status(obj, outcome))
                verdicts[outcome.tenant_id] = outcome
        return [verdicts[_name(o)] for o in items]

    def _apply(self, sources: list[TenantSource], *, repair_drift: bool) -> list[ApplyOutcome]:
        try:
            options = fleets.Options(reconcile=repair_drift)
            return operations.apply(self.session, sources, self.platform, options)
        except ControlPlaneError as exc:  # the set as a whole was refused (a claim, a rename)
            return [
                ApplyOutcome(s.tenant.id, "failed", message=exc.message, exit_code=exc.exit_code)
                for s in sources
            ]

    def _outcome_status(self, obj: Obj, outcome: ApplyOutcome) -> Obj:
        with self._lock:
            step = self._steps.pop(outcome.tenant_id, "")
        try:
            phase = str(self.session.store.get_tenant(outcome.tenant_id)["status"])
        except NotFoundError:
            phase = ""
        report = _Report(outcome.action, outcome.message, step, phase, outcome.operation_id)
        return _status(obj, report)

    def _with_finalizer(self, obj: Obj) -> Obj:
        finalizers = list((obj.get("metadata") or {}).get("finalizers") or [])
        if FINALIZER in finalizers:
            return obj
        return self.objects.set_finalizers(obj, [*finalizers, FINALIZER])

    def _finalize(self, obj: Obj) -> ApplyOutcome:
        """The delete flow for a Tenant object being deleted; then let the object go.

        A spec changed on the way out (e.g. `deletion_protection: false`) is applied
        first; a refused or failed delete keeps the finalizer and says why in status.
        """
        name = _name(obj)
        finalizers = list((obj.get("metadata") or {}).get("finalizers") or [])
        if FINALIZER not in finalizers:
            return ApplyOutcome(name, "ignored", message="being deleted, not ours to finalize")
        if _spec_changed(obj):
            self._converge([obj], repair_drift=False)
        outcome = self._delete(obj)
        if outcome.exit_code:
            self._write(obj, _status(obj, _Report("failed", outcome.message, step="delete")))
            return ApplyOutcome(
                name, "failed", message=outcome.message, exit_code=outcome.exit_code
            )
        self.objects.set_finalizers(obj, [f for f in finalizers if f != FINALIZER])
        return ApplyOutcome(name, "deleted", outcome.operation_id, outcome.message)

    def _delete(self, obj: Obj) -> Outcome:
        """The delete flow, unless the tenant is gone already (or was never recorded)."""
        name = _name(obj)
        try:
            recorded = str(self.session.store.get_tenant(name)["status"])
        except NotFoundError:  # never onboarded (e.g. its spec was invalid): nothing to do
            return Outcome(name, "unchanged", message="not recorded")
        if recorded in _GONE:  # a crash after the flow, before the finalizer went
            return Outcome(name, "unchanged", message=f"tenant is {recorded}")
        self._write(obj, _progress(obj, "delete"))
        try:
            return offboarding.delete(self.session, name)
        except ControlPlaneError as exc:  # refused: deletion protection, another operation
            return Outcome(name, "failed", message=exc.message, exit_code=exc.exit_code)

    def _write(self, obj: Obj, status: Obj) -> None:
        """Write `status` unless it is what the object has; `obj` becomes the result."""
        if _same_status(obj.get("status") or {}, status):
            return
        written = self.objects.write_status(_name(obj), status)
        obj.clear()
        obj.update(written)

    # -- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, resync: float = 300.0, watch_seconds: int = 60) -> None:
        """List, then follow the watch until `stop`; a bulk pass every `resync` seconds.

        Returns within `watch_seconds` (one watch request) of `stop`. A failed pass (API
        server unreachable) is logged and tried again after a pause.
        """
        while not stop.is_set():
            try:
                _, version = self.reconcile_all()
                self._follow(version, stop, until=time.monotonic() + resync, seconds=watch_seconds)
            except ControlPlaneError as exc:
                log.warning("kubernetes source: %s", exc.message)
                stop.wait(min(resync, 30.0))

    def _follow(self, version: str, stop: threading.Event, *, until: float, seconds: int) -> None:
        while not stop.is_set() and time.monotonic() < until:
            for event in self.objects.watch(version, seconds):
                if event.type == "EXPIRED":
                    return
                version = str(event.obj.get("metadata", {}).get("resourceVersion") or version)
                # Events lag behind our own writes: decide on the object as it is now.
                current = self.objects.get(_name(event.obj)) if event.type != "DELETED" else None
                if current is not None and _wants_work(current):
                    self.reconcile(current)
                if stop.is_set():
                    return


# -- pure helpers ------------------------------------------------------------------------


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _spec_changed(obj: Mapping[str, Any]) -> bool:
    observed = (obj.get("status") or {}).get("observedGeneration")
    return observed != (obj.get("metadata") or {}).get("generation")


def _wants_work(obj: Mapping[str, Any]) -> bool:
    """A spec change, a deletion, or an object not yet seen: not our own status writes."""
    finalizers = (obj.get("metadata") or {}).get("finalizers") or []
    return _deleting(obj) or _spec_changed(obj) or FINALIZER not in finalizers


@dataclass(frozen=True)
class _Report:
    """What the status should say: an apply action (or invalid/reconciling) and details."""

    action: str
    message: str = ""
    step: str = ""
    phase: str = ""
    operation: str = ""


# Per action: (Ready, Reconciling, Failed) condition statuses and their reason (applied and
# unchanged read the same, so a pass over a converged tenant writes no status).
_CONDITIONS: dict[str, tuple[str, str, str, str]] = {
    "applied": ("True", "False", "False", "Converged"),
    "unchanged": ("True", "False", "False", "Converged"),
    "repaired": ("True", "False", "False", "DriftRepaired"),
    "observed": ("True", "False", "False", "Observed"),
    "drifted": ("False", "False", "False", "DriftObserved"),
    "suspended": ("False", "False", "False", "Suspended"),
    "interrupted": ("False", "True", "False", "WaitingRetry"),
    "queued": ("False", "True", "False", "Queued"),
    "backing-off": ("False", "False", "True", "BackingOff"),
    "reconciling": ("False", "True", "False", "Progressing"),
    "invalid": ("False", "False", "True", "InvalidSpec"),
}
_FAILED = ("False", "False", "True", "Failed")


def _status(obj: Mapping[str, Any], report: _Report) -> Obj:
    """The status subresource for a report (conditions keep their transition times).

    `observedGeneration` moves to the object's generation once a run finished with it
    (ready, failed or invalid), so Argo CD / kstatus see the spec was looked at.
    """
    ready, reconciling, failed, reason = _CONDITIONS.get(report.action, _FAILED)
    generation = (obj.get("metadata") or {}).get("generation")
    old: Obj = dict(obj.get("status") or {})
    message = report.message or reason
    wanted = {
        "Ready": (ready, reason),
        "Reconciling": (reconciling, reason),
        "Drifted": _drifted(report.action),
        "Failed": (failed, reason),
    }
    previous = {c.get("type"): c for c in old.get("conditions") or []}
    status: Obj = {
        "conditions": [
            _condition(previous.get(kind) or {}, kind, wanted[kind], message, generation)
            for kind in tenant_crd.CONDITION_TYPES
        ],
        "message": message,
        "step": report.step or old.get("step", ""),
        "phase": report.phase or old.get("phase", ""),
        "operation": report.operation or old.get("operation", ""),
    }
    observed = generation if reconciling == "False" else old.get("observedGeneration")
    if observed is not None:
        status["observedGeneration"] = observed
    return status


def _drifted(action: str) -> tuple[str, str]:
    """Drift an observe-only tenant keeps is `True`; repaired or none is `False`."""
    if action == "drifted":
        return "True", "DriftObserved"
    return "False", "DriftRepaired" if action == "repaired" else "InSync"


def _progress(obj: Mapping[str, Any], step: str) -> Obj:
    return _status(obj, _Report("reconciling", f"running step {step}", step=step))


def _condition(
    previous: Mapping[str, Any], kind: str, wanted: tuple[str, str], message: str, generation: Any
) -> Obj:
    value, reason = wanted
    kept = previous.get("lastTransitionTime") if previous.get("status") == value else None
    found: Obj = {
        "type": kind,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": kept or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if generation is not None:
        found["observedGeneration"] = generation
    return found


def _same_status(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Equal but for transition times (which only change when a condition does)."""

    def plain(status: Mapping[str, Any]) -> Obj:
        out = dict(status)
        out["conditions"] = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"}
            for c in status.get("conditions") or []
        ]
        return out

    return plain(old) == plain(new)
