"""Run operations: `run` for one tenant and any flow, `apply` for a set of tenant files.

Everything goes through `engine.operating.Operator` (lease, heartbeat, fenced records,
audit). `apply` reads the state of every tenant in one query and the live state in one
snapshot per backend; only tenants that are not converged (or drifted, with
`reconcile`) cost an operation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from controlplane.config.loading import TenantSource
from controlplane.engine.operating import Outcome, Request
from controlplane.errors import ControlPlaneError
from controlplane.flows import onboarding, upgrading
from controlplane.models.operations import OperationStatus
from controlplane.models.platform import DriverMode, PlatformConfig
from controlplane.service import planning, queueing
from controlplane.service.sessions import Session
from controlplane.state.store import TenantState
from controlplane.steps.records import spec_fingerprint

__all__ = ["ApplyOutcome", "apply", "run"]

log = logging.getLogger(__name__)

# What `apply` reports per tenant, by the operation's final status.
_ACTIONS = {
    OperationStatus.SUCCEEDED.value: "applied",
    OperationStatus.INTERRUPTED.value: "interrupted",
    OperationStatus.WAITING.value: "interrupted",
    "locked": "failed",
}


@dataclass(frozen=True)
class ApplyOutcome:
    """What `apply` did: applied, repaired, unchanged, suspended, queued, failed or interrupted."""

    tenant_id: str
    action: str
    operation_id: str = ""
    message: str = ""
    exit_code: int = 0


def run(session: Session, kind: str, source: TenantSource, platform: PlatformConfig) -> Outcome:
    """Run flow `kind` for one tenant until it finishes, fails or is interrupted.

    A queueing session (`session.queue`) records it for the workers instead (`queued`).
    """
    if session.queue:
        return queueing.enqueue(session, kind, source, platform)
    tenant_id = source.tenant.id
    wanted = spec_fingerprint(source.tenant, platform)
    ctx = session.context(source, platform)

    def done_already() -> bool:
        # Another process may have finished the same work while we waited for the lock.
        state = session.store.tenant_states([tenant_id]).get(tenant_id)
        return kind == onboarding.KIND and planning.standing(state, wanted) == "unchanged"

    # The spec goes with the operation too: an unfinished tier change resumes with it.
    context = {**session.recorded_context(ctx.source_file, platform), "spec": _spec(source)}
    request = Request(
        kind,
        ctx,
        session.steps(kind, platform),
        fingerprint=wanted,
        context=context,
        done_already=done_already,
    )
    return session.operator().drive(request)


def _spec(source: TenantSource) -> dict[str, object]:
    return source.tenant.model_dump(mode="json")


def apply(
    session: Session,
    sources: Sequence[TenantSource],
    platform: PlatformConfig,
    *,
    parallel: int = 4,
    reconcile: bool = False,
) -> list[ApplyOutcome]:
    """Converge every tenant; independent tenants run in parallel (at most `parallel`).

    A tenant already active at this spec costs no remote call, unless `reconcile`: then
    its steps verify the real thing (in bulk) and only a drifted tenant gets an operation.
    """
    planning.check_immutable(session, sources)
    for owner, hosts in planning.check_claims(session, sources, platform).items():
        session.store.release_hosts(owner, hosts)  # handed to another tenant of this set
    states = session.store.tenant_states()
    recorded = {row["id"]: row for row in session.store.list_tenants()}
    kinds: dict[str, str] = {}
    # A changed tier (or an unfinished tier change) is the tier-change flow, never onboarding:
    # the data moves with the tenant.
    changing: dict[str, TenantSource] = {}
    for source in sources:
        state = states.get(source.tenant.id)
        tier_change = planning.tier_change(session, state, recorded.get(source.tenant.id), source)
        if tier_change is not None:
            kinds[source.tenant.id] = upgrading.KIND
            changing[source.tenant.id] = tier_change
            continue
        standing = planning.standing(state, spec_fingerprint(source.tenant, platform))
        if standing == "suspended":
            continue  # left so: `tenantctl resume` brings it back, never a re-apply
        if standing != "unchanged":
            kinds[source.tenant.id] = onboarding.KIND
        elif state is not None and _renders_elsewhere(session, platform, state):
            kinds[source.tenant.id] = onboarding.RECONCILE
    with session.observe(platform):
        if reconcile:
            steady = [s for s in sources if s.tenant.id not in kinds]
            for tenant_id in planning.drifted(session, steady, platform):
                kinds[tenant_id] = onboarding.RECONCILE
        todo = [changing.get(s.tenant.id, s) for s in sources if s.tenant.id in kinds]
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            done = list(pool.map(_runner(session, platform, kinds), todo))
    by_id = {o.tenant_id: o for o in done}
    return [by_id.get(s.tenant.id) or _untouched(states.get(s.tenant.id), s) for s in sources]


def _untouched(state: TenantState | None, source: TenantSource) -> ApplyOutcome:
    status = "suspended" if state is not None and state.status == "suspended" else "unchanged"
    return ApplyOutcome(source.tenant.id, status)


def _renders_elsewhere(session: Session, platform: PlatformConfig, state: TenantState) -> bool:
    """Render-mode files are part of what was applied: another folder (a second clone) must
    get them too, so a converged tenant applied into a different `--out` is reconciled."""
    rendered = DriverMode.RENDER in (platform.modes.kubernetes, platform.modes.cloudflare)
    return rendered and state.out_dir != str(session.out_dir.resolve())


def _runner(
    session: Session, platform: PlatformConfig, kinds: dict[str, str]
) -> Callable[[TenantSource], ApplyOutcome]:
    def one(source: TenantSource) -> ApplyOutcome:
        kind = kinds[source.tenant.id]
        if session.cancel.is_set():
            return ApplyOutcome(source.tenant.id, "interrupted", message="not started")
        try:
            outcome = run(session, kind, source, platform)
        except ControlPlaneError as exc:  # before any operation began (drivers, lock)
            return ApplyOutcome(source.tenant.id, "failed", "", exc.message, exc.exit_code)
        except Exception as exc:  # a bug: this tenant fails, the others keep their outcomes
            log.debug("apply of %s raised", source.tenant.id, exc_info=True)
            message = f"unexpected {type(exc).__name__}: {exc} (a bug in tenantctl)"
            return ApplyOutcome(source.tenant.id, "failed", "", message, 1)
        action = _ACTIONS.get(outcome.status, outcome.status)
        if action == "applied" and kind == onboarding.RECONCILE:
            action = "repaired"
        if action == "applied" and kind == upgrading.KIND:
            action = "tier changed"
        return ApplyOutcome(
            outcome.tenant_id, action, outcome.operation_id, outcome.message, outcome.exit_code
        )

    return one
