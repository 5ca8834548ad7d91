"""Run operations: `run` for one tenant and any flow, `apply` for a set of tenant files.

Everything goes through `engine.operating.Operator` (lease, heartbeat, fenced records,
audit). `apply` reads the state of every tenant in one query and the live state in one
snapshot per backend; only tenants that are not converged (or drifted, with
`reconcile`) cost an operation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from controlplane.config.loading import TenantSource
from controlplane.engine.operating import Outcome, Request
from controlplane.flows import onboarding
from controlplane.models.operations import OperationStatus
from controlplane.models.platform import PlatformConfig
from controlplane.service import planning
from controlplane.service.sessions import Session
from controlplane.state.store import TenantState
from controlplane.steps.records import spec_fingerprint

__all__ = ["ApplyOutcome", "apply", "run"]

# What `apply` reports per tenant, by the operation's final status.
_ACTIONS = {
    OperationStatus.SUCCEEDED.value: "applied",
    OperationStatus.INTERRUPTED.value: "interrupted",
    OperationStatus.WAITING.value: "interrupted",
    "locked": "failed",
}


@dataclass(frozen=True)
class ApplyOutcome:
    """What `apply` did for one tenant: applied, repaired, unchanged, failed, interrupted."""

    tenant_id: str
    action: str
    operation_id: str = ""
    message: str = ""
    exit_code: int = 0


def converged(state: TenantState | None, wanted: str) -> bool:
    """Active at the wanted spec with no operation left unfinished (even a dead one)."""
    return bool(
        state is not None
        and state.status == "active"
        and state.applied_fingerprint == wanted
        and not state.unfinished_operation
    )


def run(session: Session, kind: str, source: TenantSource, platform: PlatformConfig) -> Outcome:
    """Run flow `kind` for one tenant until it finishes, fails or is interrupted."""
    tenant_id = source.tenant.id
    wanted = spec_fingerprint(source.tenant, platform)
    ctx = session.context(source, platform)

    def done_already() -> bool:
        # Another process may have finished the same work while we waited for the lock.
        return kind == onboarding.KIND and converged(
            session.store.tenant_states([tenant_id]).get(tenant_id), wanted
        )

    request = Request(
        kind,
        ctx,
        session.steps(kind, platform),
        fingerprint=wanted,
        context=session.recorded_context(ctx.source_file, platform),
        done_already=done_already,
    )
    return session.operator().drive(request)


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
    states = session.store.tenant_states()
    kinds: dict[str, str] = {}
    for source in sources:
        wanted = spec_fingerprint(source.tenant, platform)
        if not converged(states.get(source.tenant.id), wanted):
            kinds[source.tenant.id] = onboarding.KIND
    with session.observe(platform):
        if reconcile:
            steady = [s for s in sources if s.tenant.id not in kinds]
            for tenant_id in planning.drifted(session, steady, platform):
                kinds[tenant_id] = onboarding.RECONCILE
        todo = [s for s in sources if s.tenant.id in kinds]
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            done = list(pool.map(_runner(session, platform, kinds), todo))
    by_id = {o.tenant_id: o for o in done}
    return [by_id.get(s.tenant.id) or ApplyOutcome(s.tenant.id, "unchanged") for s in sources]


def _runner(
    session: Session, platform: PlatformConfig, kinds: dict[str, str]
) -> Callable[[TenantSource], ApplyOutcome]:
    def one(source: TenantSource) -> ApplyOutcome:
        kind = kinds[source.tenant.id]
        if session.cancel.is_set():
            return ApplyOutcome(source.tenant.id, "interrupted", message="not started")
        outcome = run(session, kind, source, platform)
        action = _ACTIONS.get(outcome.status, outcome.status)
        if action == "applied" and kind == onboarding.RECONCILE:
            action = "repaired"
        return ApplyOutcome(
            outcome.tenant_id, action, outcome.operation_id, outcome.message, outcome.exit_code
        )

    return one
