"""Mutations of the API: validate like a file, then run the operation in the background.

The HTTP API answers 202 as soon as the operation is recorded (the tenant's lease is
held and its first step started) and the flow goes on in a thread, through the same
`service.lifecycle` functions as `tenantctl create|suspend|resume` (so the same
`operations.run`); `GET /v1/operations/{id}` follows it. With a queueing session
(`tenantctl serve --queue`) the same call queues the operation for `tenantctl worker`
instead, and 202 comes once it is queued.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from controlplane.config import loading
from controlplane.config.loading import TenantSource
from controlplane.engine.operating import Outcome
from controlplane.engine.running import StepEvent
from controlplane.errors import (
    ConfigError,
    ConflictError,
    ControlPlaneError,
    DriverError,
    NotFoundError,
    SourceLocation,
    StepFailedError,
)
from controlplane.models.platform import PlatformConfig
from controlplane.service import fleets, lifecycle, offboarding, operations, planning, upgrading
from controlplane.service.sessions import Session
from controlplane.state.store import Store
from controlplane.steps.records import spec_fingerprint

__all__ = ["Accepted", "Submissions", "TenantSource", "merge_patch", "parse_tenant"]

log = logging.getLogger(__name__)

# What a finished-at-once run's exit code means as an error (the exit-code table).
_BY_EXIT: Mapping[int, type[ControlPlaneError]] = {
    2: ConfigError,
    3: NotFoundError,
    4: ConflictError,
    5: DriverError,
    6: StepFailedError,
}


def parse_tenant(
    body: bytes,
    media_type: str,
    platform: PlatformConfig,
    *,
    label: str = "",
    tenant_id: str | None = None,
) -> TenantSource:
    """Validate a tenant file sent as YAML or JSON; problems name line and field.

    JSON is YAML, so both go through the same loader and report lines of the body as
    sent (a JSON body indented with tabs is re-indented first: YAML refuses tabs).
    `label` names the body in problems (default `request.json` or `request.yaml`);
    `tenant_id`, when given, is the id the body must declare (ids are immutable).

    Raises:
        ConfigError: every problem of the body, each with line and field.
    """
    is_json = "json" in media_type
    label = label or ("request.json" if is_json else "request.yaml")
    text = _utf8(body, label)
    if is_json:
        text = _json_text(text, label)
    source = loading.load_tenant_text(text, label, platform)
    if tenant_id is not None and source.tenant.id != tenant_id:
        msg = f"id is immutable: this is tenant '{tenant_id}', not '{source.tenant.id}'"
        raise ConfigError([(source.locate("tenant.id"), msg)])
    return dataclasses.replace(source, file=f"api/{source.tenant.id}.yaml")


def merge_patch(recorded: Mapping[str, object], body: bytes) -> bytes:
    """The tenant file of a recorded spec with a JSON merge patch (RFC 7396) applied.

    Raises:
        ConfigError: the patch is not a JSON object with root key `tenant`.
    """
    data = json.loads(_json_text(_utf8(body, "request.json"), "request.json"))
    if not isinstance(data, dict) or not isinstance(data.get("tenant"), dict):
        where = SourceLocation("request.json", 1, "tenant")
        raise ConfigError([(where, "a patch is a JSON object with root key 'tenant:'")])
    merged = _merged({"tenant": dict(recorded)}, data)
    return json.dumps(merged, indent=2).encode()


def _merged(target: object, patch: object) -> object:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merged(result.get(key), value)
    return result


def _utf8(body: bytes, label: str) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([(SourceLocation(label, None, ""), "the body is not UTF-8")]) from exc


def _json_text(text: str, label: str) -> str:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = SourceLocation(label, exc.lineno, "")
        raise ConfigError([(where, f"not JSON: {exc.msg} (column {exc.colno})")]) from exc
    return json.dumps(data, indent=2) if "\t" in text else text


def _applied(session: Session, source: TenantSource, platform: PlatformConfig) -> Outcome:
    """`operations.apply` of one file (into the tenant's render folder), as an outcome."""
    here = planning.recorded_session(session, source.tenant.id)
    (done,) = operations.apply(here, [source], platform, fleets.Options(parallel=1))
    return Outcome(done.tenant_id, done.action, done.operation_id, done.message, done.exit_code)


@dataclass(frozen=True)
class Accepted:
    """An accepted request: the operation that carries it out."""

    tenant_id: str
    operation_id: str


Work = Callable[[Session], Outcome]


@dataclass
class Submissions:
    """Background operations of one API process (stopped at shutdown).

    Each runs through `service.lifecycle` (the functions `tenantctl create|suspend|resume`
    call) on a copy of the API's session that acts as the caller's token; the copy
    queues for the workers when the session does (`Session.queue`).
    """

    session: Session
    platform: PlatformConfig
    start_wait: float = 60.0
    _threads: list[threading.Thread] = field(default_factory=list)
    _cancel: threading.Event = field(default_factory=threading.Event)

    def create(self, source: TenantSource, *, actor: str) -> Accepted:
        """Onboard a tenant that is not recorded yet; return once its operation began.

        Raises:
            ConflictError: the tenant is recorded already, a hostname is taken, or its
                lock is held.
            ControlPlaneError: the operation could not begin (its class says why).
        """
        planning.check_claims(self.session, [source], self.platform)
        platform = self.platform
        return self._start(
            source.tenant.id, actor, lambda worker: lifecycle.create(worker, source, platform)
        )

    def update(self, source: TenantSource, *, actor: str) -> Accepted:
        """Apply a recorded tenant's changed spec, exactly as `tenantctl apply` would with
        its file. An unchanged spec (or a suspended tenant at this spec: `resume` brings
        it back, never an apply) starts nothing: the answer has no operation id.

        Raises:
            NotFoundError: the tenant is not recorded (create it instead).
            ConflictError: a hostname another tenant keeps, or the tenant's lock is held.
        """
        tenant_id = source.tenant.id
        self.session.store.get_tenant(tenant_id)
        planning.check_claims(self.session, [source], self.platform)
        state = self.session.store.tenant_states([tenant_id]).get(tenant_id)
        wanted = spec_fingerprint(source.tenant, self.platform)
        if planning.standing(state, wanted) in ("unchanged", "suspended"):
            return Accepted(tenant_id, "")
        platform = self.platform
        return self._start(tenant_id, actor, lambda worker: _applied(worker, source, platform))

    def suspend(self, tenant_id: str, *, actor: str) -> Accepted:
        """Take a tenant's traffic off (`tenantctl suspend`); return once it began.

        Raises:
            NotFoundError: the tenant is not recorded.
            ConflictError: its status does not allow it, or its lock is held.
        """
        self.session.store.get_tenant(tenant_id)
        return self._start(tenant_id, actor, lambda worker: lifecycle.suspend(worker, tenant_id))

    def resume(self, tenant_id: str, *, actor: str) -> Accepted:
        """Bring a suspended tenant back (`tenantctl resume`); return once it began.

        Raises:
            NotFoundError: the tenant is not recorded.
            ConflictError: it is not suspended, or its lock is held.
        """
        self.session.store.get_tenant(tenant_id)
        return self._start(tenant_id, actor, lambda worker: lifecycle.resume(worker, tenant_id))

    def change_tier(self, tenant_id: str, tier: str, *, actor: str, up: bool) -> Accepted:
        """Move a tenant and its data to `tier` (`tenantctl upgrade|downgrade`), which must
        lie above (`up`) or below its tier.

        Raises:
            NotFoundError: the tenant is not recorded.
            ConfigError: no tier, the wrong direction, or its limits exceed the tier.
            ConflictError: already on it, not active, another change unfinished, or locked.
        """
        upgrading.check_direction(self.session, tenant_id, tier, up=up)
        return self._start(
            tenant_id, actor, lambda worker: upgrading.change_tier(worker, tenant_id, tier)
        )

    def delete(self, tenant_id: str, *, actor: str, force: bool = False) -> Accepted:
        """Delete a tenant (`tenantctl delete`): traffic off, a verified export, `deleted`.

        Raises:
            NotFoundError: the tenant is not recorded.
            ConflictError: deletion protection is on and not `force`, it is deleted
                already, or its lock is held.
        """
        self.session.store.get_tenant(tenant_id)
        return self._start(
            tenant_id, actor, lambda worker: offboarding.delete(worker, tenant_id, force=force)
        )

    def restore(self, tenant_id: str, *, actor: str) -> Accepted:
        """Bring a deleted, not yet purged tenant back (`tenantctl restore`).

        Raises:
            NotFoundError: the tenant is not recorded.
            ConflictError: it is not deleted, or its lock is held.
        """
        self.session.store.get_tenant(tenant_id)
        return self._start(tenant_id, actor, lambda worker: offboarding.restore(worker, tenant_id))

    def export(self, tenant_id: str, *, actor: str) -> Accepted:
        """Take a verified, encrypted export of the tenant's data (`tenantctl export`).

        Raises:
            NotFoundError: the tenant is not recorded.
            ConflictError: it is purged (nothing left), or its lock is held.
        """
        self.session.store.get_tenant(tenant_id)
        return self._start(tenant_id, actor, lambda worker: offboarding.export(worker, tenant_id))

    def purge(self, tenant_id: str, *, actor: str, without_export: bool = False) -> Accepted:
        """Purge one deleted tenant past its retention (`tenantctl purge TENANT`).

        Raises:
            NotFoundError: the tenant is not recorded.
            ConflictError: it is not deleted, its retention has not ended, it has no
                verified export and not `without_export`, or its lock is held.
        """
        self.session.store.get_tenant(tenant_id)

        def work(worker: Session) -> Outcome:
            (outcome,) = offboarding.purge(
                worker, tenant_ids=[tenant_id], without_export=without_export
            )
            return outcome

        return self._start(tenant_id, actor, work)

    def _start(self, tenant_id: str, actor: str, work: Work) -> Accepted:
        began = threading.Event()
        result: list[Outcome | ControlPlaneError] = []

        def first_event(_event: StepEvent) -> None:
            began.set()

        worker = dataclasses.replace(
            self.session,
            store=Store(self.session.store.engine, actor=actor),
            holder="",
            on_event=first_event,
            cancel=self._cancel,
        )

        def run() -> None:
            try:
                result.append(work(worker))
            except ControlPlaneError as exc:  # refused before any operation began
                result.append(exc)
            finally:
                began.set()

        thread = threading.Thread(target=run, name=f"operation-{tenant_id}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        began.wait(self.start_wait + self.session.lock_wait)
        return self._accepted(worker, tenant_id, result)

    @staticmethod
    def _accepted(
        worker: Session, tenant_id: str, result: list[Outcome | ControlPlaneError]
    ) -> Accepted:
        outcome = result[0] if result else None
        if isinstance(outcome, ControlPlaneError):
            raise outcome
        if outcome is not None and not outcome.operation_id:
            if not outcome.exit_code:  # nothing to do (an apply of an observe-only tenant)
                return Accepted(tenant_id, "")
            error = _BY_EXIT.get(outcome.exit_code, ControlPlaneError)
            message = outcome.message or f"the operation did not begin ({outcome.status})"
            if error is ConfigError:
                raise ConfigError([(SourceLocation("request", None, ""), message)])
            raise error(message)
        if outcome is not None:
            return Accepted(tenant_id, outcome.operation_id)
        newest = worker.store.operations_of(tenant_id, limit=1)
        if not newest:
            msg = f"tenant '{tenant_id}': the operation did not begin in time; retry"
            raise ConflictError(msg, retryable=True)
        return Accepted(tenant_id, str(newest[0]["id"]))

    def drain(self, timeout: float = 300.0) -> None:
        """Wait for the running operations to end by themselves (a graceful stop)."""
        for thread in self._threads:
            thread.join(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Ask running operations to stop at the next step boundary, and wait for them."""
        self._cancel.set()
        for thread in self._threads:
            thread.join(timeout)
