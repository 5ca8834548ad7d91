"""Run operations: `run` for one tenant and any flow, `apply` for a set of tenant files.

Everything goes through `engine.operating.Operator` (lease, heartbeat, fenced records,
audit). `apply` reads the state of every tenant in one query and the live state in one
snapshot per backend; only tenants that are not converged (or drifted, with
`reconcile`) cost an operation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from controlplane.config.loading import TenantSource
from controlplane.engine.operating import Outcome, Request
from controlplane.errors import ControlPlaneError
from controlplane.flows import onboarding, upgrading
from controlplane.models.operations import OperationStatus
from controlplane.models.platform import DriverMode, PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.service import fleets, offboarding, planning, queueing
from controlplane.service.sessions import Session
from controlplane.state.store import TenantState
from controlplane.steps import migration
from controlplane.steps.records import spec_fingerprint

__all__ = ["REPAIRED", "ApplyOutcome", "apply", "run"]

log = logging.getLogger(__name__)

# The audit action of a drift repair; its detail lists the `problems`, "<step>: <problem>".
REPAIRED = "reconcile.repaired"

# What `apply` reports per tenant, by the operation's final status.
_ACTIONS = {
    OperationStatus.SUCCEEDED.value: "applied",
    OperationStatus.INTERRUPTED.value: "interrupted",
    OperationStatus.WAITING.value: "interrupted",
    "locked": "failed",
}


@dataclass(frozen=True)
class ApplyOutcome:
    """What `apply` did to one tenant: applied, repaired, tier changed, unchanged, suspended,
    observed, drifted (observed, not corrected), backing-off, pending-deletion, deleted,
    queued, failed or interrupted."""

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
    options: fleets.Options | None = None,
) -> list[ApplyOutcome]:
    """Converge every tenant; independent tenants run in parallel (at most `parallel`).

    A tenant already active at this spec costs no remote call, unless `reconcile`: then
    its steps verify the real thing (in bulk) and only a drifted tenant gets an operation
    (audited with what drifted). Observed tenants (`lifecycle.management: observe`, or
    paused) are never changed: their drift is reported. Tenants of `scope` whose file is
    gone are marked pending deletion, and deleted when `prune`.

    Raises:
        BlastRadiusError: (exit 4) the run would delete or downgrade more tenants than
            `max_deletions` (default: the platform's); checked before anything changes.
    """
    options = options or fleets.Options()
    planning.check_immutable(session, sources)
    handed_over = planning.check_claims(session, sources, platform)
    rows = {r["id"]: r for r in session.store.list_tenants()}
    gone = fleets.missing(rows, sources, options.scope)
    book = session.reconciles()
    controls = book.controls()
    watching = fleets.observed(sources, controls)
    deleting = [t for t in gone if options.prune and t not in watching]
    downgrading = [t for t in fleets.downgrades(rows, sources) if t not in watching]
    limit = platform.max_deletions if options.max_deletions is None else options.max_deletions
    fleets.guard(deleting, downgrading, limit)
    for owner, hosts in handed_over.items():
        session.store.release_hosts(owner, hosts)  # handed to another tenant of this set
    book.mark_pending_deletion(gone, [s.tenant.id for s in sources])
    states = session.store.tenant_states()
    held = watching | options.skip
    acting = [s for s in sources if s.tenant.id not in held]
    kinds, changing = _kinds(session, platform, acting, states, rows)
    found: dict[str, list[tuple[str, str]]] = {}
    with session.observe(platform):
        if options.reconcile:
            steady = [s for s in sources if s.tenant.id not in kinds and s.tenant.id not in held]
            observed = [_as_recorded(s, rows) for s in sources if s.tenant.id in watching]
            checked = [*steady, *(s for s in observed if s is not None)]
            found = planning.drifted(session, checked, platform)
            kinds.update(
                dict.fromkeys((t for t in found if t not in watching), onboarding.RECONCILE)
            )
        todo = [changing.get(s.tenant.id, s) for s in sources if s.tenant.id in kinds]
        with ThreadPoolExecutor(max_workers=max(1, options.parallel)) as pool:
            done = list(pool.map(_runner(session, platform, kinds, found), todo))
            # A deletion needs no snapshot, but shares the bound on parallel operations.
            done += pool.map(_deleter(session), deleting)
    by_id = {o.tenant_id: o for o in done}
    results = [
        by_id.get(s.tenant.id) or _untouched(states.get(s.tenant.id), s, watching, options, found)
        for s in sources
    ]
    return results + [by_id.get(t) or ApplyOutcome(t, "pending-deletion") for t in gone]


def _kinds(
    session: Session,
    platform: PlatformConfig,
    sources: Sequence[TenantSource],
    states: Mapping[str, TenantState],
    recorded: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[str, str], dict[str, TenantSource]]:
    """The flow each tenant needs (none when it is converged or left suspended), and what
    each tier change runs with."""
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
        if standing in planning.LEFT:
            continue  # left so: `tenantctl resume` / `restore` brings it back, never a re-apply
        if standing != "unchanged":
            kinds[source.tenant.id] = onboarding.KIND
        elif state is not None and _renders_elsewhere(session, platform, state, source):
            kinds[source.tenant.id] = onboarding.RECONCILE
    return kinds, changing


def _as_recorded(
    source: TenantSource, rows: Mapping[str, Mapping[str, Any]]
) -> TenantSource | None:
    """An observed tenant as last applied: its drift is measured against what tenantctl
    made, not against a file edit it is not applying."""
    row = rows.get(source.tenant.id)
    if row is None:
        return None
    return replace(source, tenant=Tenant.model_validate(row["spec"]))


def _untouched(
    state: TenantState | None,
    source: TenantSource,
    watching: set[str],
    options: fleets.Options,
    found: Mapping[str, list[tuple[str, str]]],
) -> ApplyOutcome:
    tenant_id = source.tenant.id
    if tenant_id in watching:
        problems = "; ".join(f"{step}: {problem}" for step, problem in found.get(tenant_id, []))
        return ApplyOutcome(tenant_id, "drifted" if problems else "observed", message=problems)
    if tenant_id in options.skip:
        return ApplyOutcome(tenant_id, "backing-off")
    if state is not None and state.status in planning.LEFT:
        return ApplyOutcome(tenant_id, state.status)  # left so until its own command
    return ApplyOutcome(tenant_id, "unchanged")


def _renders_elsewhere(
    session: Session, platform: PlatformConfig, state: TenantState, source: TenantSource
) -> bool:
    """Render-mode files are part of what was applied: another folder (a second clone) must
    get them too, and a removed one (`make clean`) again, so a converged tenant applied into
    a different `--out`, or whose folder is gone, is reconciled."""
    rendered = DriverMode.RENDER in (platform.modes.kubernetes, platform.modes.cloudflare)
    here = session.out_dir.resolve()
    return rendered and (state.out_dir != str(here) or not (here / source.tenant.id).is_dir())


def _runner(
    session: Session,
    platform: PlatformConfig,
    kinds: Mapping[str, str],
    drift: Mapping[str, list[tuple[str, str]]],
) -> Callable[[TenantSource], ApplyOutcome]:
    def one(source: TenantSource) -> ApplyOutcome:
        tenant_id, kind = source.tenant.id, kinds[source.tenant.id]
        outcome = _guarded(session, tenant_id, lambda: run(session, kind, source, platform))
        if outcome.action == "applied" and kind == onboarding.RECONCILE:
            problems = [f"{step}: {problem}" for step, problem in drift.get(tenant_id, [])]
            session.store.audit(
                REPAIRED,
                tenant_id,
                {"operation": outcome.operation_id, "problems": problems},
            )
            return replace(outcome, action="repaired", message="; ".join(problems))
        if outcome.action == "applied" and kind == upgrading.KIND:
            return replace(outcome, action="tier changed", message=moved(session, outcome))
        return outcome

    return one


def moved(session: Session, outcome: Outcome | ApplyOutcome) -> str:
    """Rows moved and the write freeze of a finished tier change ("" if it did not finish)."""
    if not outcome.operation_id:
        return ""
    record = session.store.load_steps(outcome.operation_id).get(migration.RESUME)
    return migration.moved(record.outputs) if record and record.status == "done" else ""


def _deleter(session: Session) -> Callable[[str], ApplyOutcome]:
    """`--prune`: a tenant whose file is gone goes through the delete flow (export first)."""

    def one(tenant_id: str) -> ApplyOutcome:
        outcome = _guarded(session, tenant_id, lambda: offboarding.delete(session, tenant_id))
        return replace(outcome, action="deleted") if outcome.action == "applied" else outcome

    return one


def _guarded(session: Session, tenant_id: str, call: Callable[[], Outcome]) -> ApplyOutcome:
    """One tenant's operation; its failure is its own outcome, never the other tenants'."""
    if session.cancel.is_set():
        return ApplyOutcome(tenant_id, "interrupted", message="not started")
    try:
        outcome = call()
    except ControlPlaneError as exc:  # before any operation began (drivers, lock)
        return ApplyOutcome(tenant_id, "failed", "", exc.message, exc.exit_code)
    except Exception as exc:  # a bug: this tenant fails, the others keep their outcomes
        log.debug("operation of %s raised", tenant_id, exc_info=True)
        message = f"unexpected {type(exc).__name__}: {exc} (a bug in tenantctl)"
        return ApplyOutcome(tenant_id, "failed", "", message, 1)
    action = _ACTIONS.get(outcome.status, outcome.status)
    return ApplyOutcome(
        outcome.tenant_id, action, outcome.operation_id, outcome.message, outcome.exit_code
    )
