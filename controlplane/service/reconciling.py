"""The reconciler: passes that keep every tenant of a desired source converged.

One pass is `apply --reconcile` over the whole source: desired (the files), recorded
(one query) and live (one snapshot per backend) are compared per tenant in memory, and
only a tenant that differs gets an operation; a drift repair is audited with what it
fixed. On top of that a pass keeps a per-tenant backoff in the state store (so a
restarted reconciler respects it): a tenant that failed is left alone until its next
attempt, each failure in a row doubling the wait. `watch` repeats passes until stopped.

Where desired tenants come from is a small seam (`DesiredSource`): a directory of tenant
files here; a Kubernetes source (Tenant objects) plugs in beside it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from controlplane.config.loading import TenantSource
from controlplane.errors import ControlPlaneError
from controlplane.models.platform import PlatformConfig
from controlplane.service import fleets, inputs, operations
from controlplane.service.operations import ApplyOutcome
from controlplane.service.sessions import Session
from controlplane.state.reconciles import Control

__all__ = [
    "Backoff",
    "Desired",
    "DesiredSource",
    "Directory",
    "Pacing",
    "PassReport",
    "pause",
    "reconcile",
    "unpause",
    "watch",
]

# What a pass could not fix: failed now, waiting out a backoff, or observed drift.
UNFIXED = frozenset({"failed", "backing-off", "drifted"})
_HEALTHY = frozenset({"applied", "repaired", "unchanged", "deleted"})


@dataclass(frozen=True)
class Desired:
    """The desired fleet: platform, tenants, and which recorded tenants it speaks for."""

    platform: PlatformConfig
    sources: Sequence[TenantSource]
    scope: fleets.Scope = field(default_factory=fleets.Scope)


class DesiredSource(Protocol):
    """Where a pass reads desired tenants from (re-read every pass)."""

    def load(self) -> Desired:
        """The desired fleet now; ConfigError when it is invalid."""
        ...


@dataclass(frozen=True)
class Directory:
    """Tenant files in directories (a Git checkout the platform keeps pulled)."""

    paths: tuple[Path, ...]
    platform_file: Path | None = None

    def load(self) -> Desired:
        platform, sources = inputs.load(self.paths, self.platform_file)
        return Desired(platform, sources, fleets.Scope.of(self.paths))


@dataclass(frozen=True)
class Backoff:
    """Wait `base` seconds after a tenant's first failed pass, doubling up to `cap`."""

    base: float = 60.0
    cap: float = 3600.0

    def delay(self, failures: int) -> float:
        """Seconds to leave a tenant alone after `failures` failed passes in a row."""
        return float(min(self.cap, self.base * 2 ** max(0, failures - 1)))


@dataclass(frozen=True)
class PassReport:
    """One pass: each tenant's outcome, or why the pass could not run at all."""

    at: datetime
    outcomes: list[ApplyOutcome] = field(default_factory=list)
    error: str = ""
    exit_code: int = 0

    @property
    def unfixed(self) -> list[ApplyOutcome]:
        """Tenants this pass left unconverged."""
        return [o for o in self.outcomes if o.action in UNFIXED]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def reconcile(
    session: Session,
    source: DesiredSource,
    *,
    clock: Callable[[], datetime] = _utcnow,
    backoff: Backoff | None = None,
    parallel: int = 4,
) -> PassReport:
    """One pass over every tenant of `source`: heal drift, apply changes, keep backoffs.

    Raises:
        ControlPlaneError: the source is invalid (ConfigError), the guard refused
            (BlastRadiusError) or a backend is down; nothing was changed.
    """
    desired = source.load()
    backoff = backoff or Backoff()
    now = clock()
    book = session.reconciles()
    controls = book.controls()
    waiting = frozenset(
        tenant_id
        for tenant_id, control in controls.items()
        if control.next_attempt_at is not None and control.next_attempt_at > now
    )
    options = fleets.Options(parallel=parallel, reconcile=True, scope=desired.scope, skip=waiting)
    outcomes = operations.apply(session, desired.sources, desired.platform, options)
    for outcome in outcomes:
        if outcome.action == "failed":
            failures = controls.get(outcome.tenant_id, Control()).failures + 1
            retry = now + timedelta(seconds=backoff.delay(failures))
            book.record_failure(outcome.tenant_id, outcome.message, retry)
    book.clear_failures(
        o.tenant_id
        for o in outcomes
        if o.action in _HEALTHY and controls.get(o.tenant_id, Control()).failures
    )
    return PassReport(now, [_explained(o, controls) for o in outcomes])


def _explained(outcome: ApplyOutcome, controls: dict[str, Control]) -> ApplyOutcome:
    """A backing-off tenant says why and until when."""
    control = controls.get(outcome.tenant_id)
    if outcome.action != "backing-off" or control is None or control.next_attempt_at is None:
        return outcome
    when = control.next_attempt_at.isoformat(timespec="seconds")
    message = f"failed {control.failures} pass(es) in a row, next attempt {when}: "
    return replace(outcome, message=message + control.last_error)


@dataclass(frozen=True)
class Pacing:
    """When `watch` runs passes: every `interval` seconds until `stop` is set.

    The loop waits on `stop` itself (`stop.wait(interval)`), so SIGTERM ends a wait at
    once; tests pass an Event whose `wait` moves a fake clock instead of sleeping.
    """

    interval: float
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], datetime] = _utcnow


def watch(
    session: Session,
    source: DesiredSource,
    pacing: Pacing,
    on_pass: Callable[[PassReport], None],
) -> None:
    """Run passes until `pacing.stop` is set (SIGTERM, Ctrl-C).

    A pass that cannot run (an invalid commit in the checkout, an outage) is reported and
    the next one tries again: the loop only ends when told to.
    """
    while not pacing.stop.is_set():
        try:
            report = reconcile(session, source, clock=pacing.clock)
        except ControlPlaneError as exc:
            report = PassReport(pacing.clock(), error=exc.message, exit_code=exc.exit_code)
        on_pass(report)
        if session.cancel.is_set() or pacing.stop.wait(pacing.interval):
            return


def pause(session: Session, tenant_id: str, *, reason: str = "") -> None:
    """Observe only: drift of the tenant is reported, never corrected, until `unpause`.

    Raises:
        NotFoundError: the tenant is not recorded.
    """
    session.store.get_tenant(tenant_id)
    session.reconciles().set_paused(tenant_id, paused=True, reason=reason)


def unpause(session: Session, tenant_id: str) -> None:
    """Reconcile the tenant again (the next pass corrects its drift).

    Raises:
        NotFoundError: the tenant is not recorded.
    """
    session.store.get_tenant(tenant_id)
    session.reconciles().set_paused(tenant_id, paused=False)
