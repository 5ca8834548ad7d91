"""Read-only comparisons: `plan`, `diff`, `verify` and the drift check of `apply --reconcile`.

Desired state comes from the tenant files (or, for `verify`, from what the tenant's last
operation recorded: spec, platform config and render folder, so any host can verify it);
live state is read in one snapshot per backend and compared per tenant in memory.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.config import loading
from controlplane.config.loading import TenantSource
from controlplane.engine import diffing
from controlplane.engine.steps import Change, Step, StepContext
from controlplane.errors import ConfigError, ConflictError, ControlPlaneError
from controlplane.flows import onboarding, upgrading
from controlplane.models.operations import UNFINISHED, StepRecord
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.service import fleets
from controlplane.service.sessions import Session
from controlplane.state.store import TenantState
from controlplane.steps import kubernetes as kubernetes_steps
from controlplane.steps import migration, records
from controlplane.steps.records import spec_fingerprint

log = logging.getLogger(__name__)

__all__ = [
    "LEFT",
    "TenantPlan",
    "check_immutable",
    "check_recorded",
    "diff",
    "drift",
    "drifted",
    "plan",
    "recorded_platform",
    "recorded_session",
    "standing",
    "tier_change",
    "unfinished_tier_change",
    "verify",
]


@dataclass(frozen=True)
class TenantPlan:
    """What `apply` would do for one tenant; `changes` (from `diff`) are field-level, per
    backend: `backend, step, object, field, want, have`."""

    tenant_id: str
    file: str
    action: str
    fields: list[str]
    steps: list[Change]
    changes: list[dict[str, str]] = field(default_factory=list)


_KUBERNETES = (
    kubernetes_steps.ComputeStep,
    kubernetes_steps.ConfigStep,
    kubernetes_steps.NetworkStep,
)
_COLUMNS = ("object", "field", "want", "have")
# Statuses an unchanged file leaves as they are (only their own command undoes them).
LEFT = frozenset({"suspended", "deleted"})
# Plan actions under which a tenant's resources stay as they are.
_IDLE = frozenset({"unchanged", "observed", "pending-deletion", "delete", *LEFT})


def standing(state: TenantState | None, wanted: str) -> str:
    """Where a recorded tenant stands against the wanted spec fingerprint, for plan and apply:

    `unchanged` (active at it, no operation left unfinished, even a dead one), `suspended`
    or `deleted` (so at it: left so until `tenantctl resume` / `restore`), else `update`.
    """
    if state is None or state.applied_fingerprint != wanted or state.unfinished_operation:
        return "update"
    if state.status == "active":
        return "unchanged"
    return state.status if state.status in LEFT else "update"


def unfinished_tier_change(session: Session, tenant_id: str) -> TenantSource | None:
    """The spec the tenant's newest operation runs, when that is an unfinished tier change."""
    newest = session.store.operations_of(tenant_id, limit=1)
    if not newest or newest[0]["kind"] != upgrading.KIND:
        return None
    if newest[0]["status"] not in {status.value for status in UNFINISHED}:
        return None
    context = newest[0]["context"] or {}
    spec = Tenant.model_validate(context["spec"])
    return TenantSource(spec, str(context.get("source_file") or ""), "")


def tier_change(
    session: Session,
    state: TenantState | None,
    recorded: Mapping[str, object] | None,
    source: TenantSource,
) -> TenantSource | None:
    """What a tier change runs for `source`: an unfinished one, with the spec it started
    with (finished first, always), or `source` when it changes an active tenant's tier."""
    if state is None or recorded is None:
        return None
    if state.unfinished_operation:
        unfinished = unfinished_tier_change(session, source.tenant.id)
        if unfinished is not None:
            return unfinished
    spec = recorded["spec"]
    tier = spec.get("tier") if isinstance(spec, Mapping) else None
    if state.status == "active" and tier != source.tenant.tier.value:
        return source
    return None


def check_recorded(
    session: Session, sources: Sequence[TenantSource], platform: PlatformConfig
) -> None:
    """What `validate` checks against the state store: immutable ids, claimed hostnames."""
    check_immutable(session, sources)
    check_claims(session, sources, platform)


def check_immutable(session: Session, sources: Iterable[TenantSource]) -> None:
    """Refuse a file that now declares a different id than the one recorded from it."""
    owners = {r["source_file"]: r["id"] for r in session.store.list_tenants()}
    problems = []
    for source in sources:
        recorded = owners.get(str(Path(source.file).resolve()))
        if recorded is not None and recorded != source.tenant.id:
            problems.append(
                (
                    source.locate("tenant.id"),
                    f"id is immutable: this file recorded tenant '{recorded}'; "
                    "to create a new tenant use a new file",
                )
            )
    if problems:
        raise ConfigError(problems)


def check_claims(
    session: Session, sources: Sequence[TenantSource], platform: PlatformConfig
) -> dict[str, list[str]]:
    """Refuse hostnames that recorded tenants own; return hostnames handed over in this set.

    A hostname recorded for tenant B may be claimed by A only when B is in the same set
    and its new file no longer names it (a swap or a move between tenants): those are
    returned as {B: [hostnames]}, for `apply` to release before it runs.

    Raises:
        ConflictError: (exit 4) a file claims a hostname another recorded tenant keeps.
    """
    wanted: dict[str, dict[str, str]] = {
        s.tenant.id: records.desired_hosts(s.tenant, platform) for s in sources
    }
    owners = session.store.host_owners([h for hosts in wanted.values() for h in hosts])
    problems: list[str] = []
    handed_over: dict[str, list[str]] = {}
    for source in sources:
        for host, kind in wanted[source.tenant.id].items():
            owner = owners.get(host)
            if owner is None or owner == source.tenant.id:
                continue
            if owner in wanted and host not in wanted[owner]:
                handed_over.setdefault(owner, []).append(host)
                continue
            where = source.locate(_host_field(source, host, kind))
            problems.append(f"{where}: {host} belongs to recorded tenant '{owner}'")
    if problems:
        msg = "\n".join(problems) + "\n(free it in that tenant's file first, or pick another name)"
        raise ConflictError(msg)
    return handed_over


def _host_field(source: TenantSource, host: str, kind: str) -> str:
    if kind == "subdomain":
        return "tenant.domains.subdomain" if source.tenant.domains.subdomain else "tenant.id"
    return f"tenant.domains.custom[{list(source.tenant.domains.custom).index(host)}]"


def plan(
    session: Session,
    sources: Sequence[TenantSource],
    platform: PlatformConfig,
    *,
    scope: fleets.Scope | None = None,
    prune: bool = False,
) -> list[TenantPlan]:
    """Compare each tenant file with what is recorded and what is live; changes nothing.

    Actions: create, update, tier-change, unchanged, suspended, deleted,
    observed (observe only: nothing is applied), and for recorded tenants of `scope`
    whose file is gone pending-deletion (`delete` with `prune`).

    Raises:
        ConfigError: a file changed its tenant's id.
        ConflictError: a file claims a hostname another recorded tenant keeps.
    """
    return _pruned(_plans(session, sources, platform, scope, fields=False), prune=prune)


def diff(
    session: Session,
    sources: Sequence[TenantSource],
    platform: PlatformConfig,
    *,
    scope: fleets.Scope | None = None,
    prune: bool = False,
) -> list[TenantPlan]:
    """`plan` with field-level changes per tenant across database, Kubernetes and DNS.

    Kubernetes objects are compared field by field (one labelled list per kind), DNS
    records against the zone listing; the database is planned by Terraform for a tenant
    that would change, and checked in the catalog snapshot (schema, roles, grants) for one
    that would not. Reads only.
    """
    return _pruned(_plans(session, sources, platform, scope, fields=True), prune=prune)


def _pruned(plans: list[TenantPlan], *, prune: bool) -> list[TenantPlan]:
    """With `prune`, a tenant pending deletion is one `apply` deletes."""
    if not prune:
        return plans
    return [
        dataclasses.replace(p, action="delete") if p.action == "pending-deletion" else p
        for p in plans
    ]


def _plans(
    session: Session,
    sources: Sequence[TenantSource],
    platform: PlatformConfig,
    scope: fleets.Scope | None,
    *,
    fields: bool,
) -> list[TenantPlan]:
    check_immutable(session, sources)
    check_claims(session, sources, platform)
    states = session.store.tenant_states()
    rows = {r["id"]: r for r in session.store.list_tenants()}
    watching = fleets.observed(sources, session.reconciles().controls())
    done = session.store.latest_done()
    steps = session.steps(onboarding.KIND, platform)
    plans = []
    with session.observe(platform):
        for source in sources:
            tenant_id = source.tenant.id
            row = rows.get(tenant_id)
            changing = tier_change(session, states.get(tenant_id), row, source)
            if row is None:
                action, changed = "create", []
            else:
                changed = diffing.changed_fields(row["spec"], source.tenant.model_dump(mode="json"))
                action = standing(states.get(tenant_id), spec_fingerprint(source.tenant, platform))
            if tenant_id in watching:
                action, changing = "observed", None
            elif changing is not None:
                action = upgrading.KIND
            ctx = session.context(changing or source, platform, _outputs(done, tenant_id))
            idle = action in _IDLE
            if changing is not None:
                changes = _tier_changes(session.steps(upgrading.KIND, platform), ctx)
            else:
                changes = [] if idle else [c for s in steps for c in s.plan(ctx)]
            found = _changes(steps, ctx, idle=idle) if fields else []
            plans.append(TenantPlan(tenant_id, source.file, action, changed, changes, found))
    plans += [
        TenantPlan(tenant_id, str(rows[tenant_id]["source_file"]), "pending-deletion", [], [])
        for tenant_id in fleets.missing(rows, sources, scope or fleets.Scope())
    ]
    return plans


def _tier_changes(steps: Sequence[Step], ctx: StepContext) -> list[Change]:
    """A tier change's plan: each step's, the data steps' from what `migration.source`
    decides (the tables and rows to move; it reads only)."""
    changes: list[Change] = []
    for step in steps:
        if isinstance(step, migration.SourceStep):
            ctx = ctx.with_outputs({**ctx.outputs, step.name: step.decide(ctx)})
        changes.extend(step.plan(ctx))
    return changes


def _changes(steps: Sequence[Step], ctx: StepContext, *, idle: bool) -> list[dict[str, str]]:
    """Field-level changes of one tenant, per backend (see `diff`)."""
    found: list[dict[str, str]] = []
    for step in steps:
        if isinstance(step, _KUBERNETES):
            found += [
                _row("kubernetes", step.name, (d.target, d.path, d.want, d.have))
                for d in step.differences(ctx)
            ]
        elif step.name == "database" and idle:
            # Converged: the catalog snapshot, not a Terraform plan per tenant.
            found += [_row("database", step.name, ("", "", "", p)) for p in step.verify(ctx)]
        elif step.name in ("database", "dns"):
            found += [
                _row(step.name, step.name, (c.target, c.action, c.detail, ""))
                for c in step.plan(ctx)
                if c.action != "noop"
            ]
    return found


def _row(backend: str, step: str, change: tuple[str, str, str, str]) -> dict[str, str]:
    """One change: the object, its field (or the action), the wanted and the live value."""
    return {"backend": backend, "step": step, **dict(zip(_COLUMNS, change, strict=True))}


def _outputs(
    done: Mapping[str, Mapping[str, StepRecord]], tenant_id: str
) -> dict[str, dict[str, str]]:
    """Outputs of each step's last successful run, for steps that read earlier ones."""
    return {name: dict(r.outputs) for name, r in done.get(tenant_id, {}).items()}


def drifted(
    session: Session, sources: Sequence[TenantSource], platform: PlatformConfig
) -> dict[str, list[tuple[str, str]]]:
    """Tenants (of converged ones) whose live resources no longer verify, with their
    `(step, problem)`s; call inside observe.

    Tenant records, hostnames and step outputs are read in bulk, live state from the
    open snapshot: the per-tenant comparison runs in memory.

    Raises:
        ControlPlaneError: (retryable) a backend is down: one error for the run, not an
            operation per tenant.
    """
    return dict(_drift(session, sources, platform))


def drift(
    session: Session, sources: Sequence[TenantSource], platform: PlatformConfig
) -> list[dict[str, str]]:
    """One drift report across every backend: `tenant, step, problem` rows (reads only).

    Raises:
        ControlPlaneError: (retryable) a backend is down.
    """
    with session.observe(platform):
        return [
            {"tenant": tenant, "step": step, "problem": problem}
            for tenant, problems in _drift(session, sources, platform)
            for step, problem in problems
        ]


def _drift(
    session: Session, sources: Sequence[TenantSource], platform: PlatformConfig
) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """(tenant, [(step, problem)]) for each tenant whose resources do not verify."""
    done = session.store.latest_done()
    steps = session.steps(onboarding.KIND, platform, registry=session.store.recorded())
    for source in sources:
        ctx = session.context(source, platform, _outputs(done, source.tenant.id))
        found: list[tuple[str, str]] = []
        try:
            for step in steps:
                found.extend((step.name, problem) for problem in step.verify(ctx))
        except ControlPlaneError as exc:
            if exc.retryable:
                raise  # an outage: say so once, rather than open an operation per tenant
            found.append((step.name, exc.message))  # its operation re-runs and records it
        except Exception as exc:
            log.debug("drift check of %s raised", source.tenant.id, exc_info=True)
            found.append((step.name, f"unexpected {type(exc).__name__}: {exc}"))
        if found:
            yield source.tenant.id, found


def recorded_platform(
    session: Session, tenant_id: str, platform_file: Path | None = None
) -> PlatformConfig:
    """`platform_file` if given, else the platform config the tenant's last operation recorded."""
    if platform_file is not None:
        return loading.load_platform(platform_file)
    recorded = session.store.operation_context(tenant_id).get("platform")
    if recorded is not None:
        return PlatformConfig.model_validate(recorded)
    return loading.load_platform(None)


def recorded_session(session: Session, tenant_id: str, out_dir: Path | None = None) -> Session:
    """`session` rendering into `out_dir`, else the folder the tenant's last operation used."""
    recorded = session.store.operation_context(tenant_id).get("out_dir")
    return session.at(out_dir or (Path(str(recorded)) if recorded else session.out_dir))


def verify(
    session: Session,
    tenant_id: str,
    *,
    platform_file: Path | None = None,
    out_dir: Path | None = None,
) -> list[str]:
    """Run every onboarding step's `verify` for a recorded tenant; problems as `step: text`.

    The tenant is rebuilt from its recorded spec, the platform and render folder from its
    last operation (`platform_file` and `out_dir` override them).
    """
    row = session.store.get_tenant(tenant_id)
    platform = recorded_platform(session, tenant_id, platform_file)
    here = recorded_session(session, tenant_id, out_dir)
    tenant = Tenant.model_validate(row["spec"])
    steps = here.steps(onboarding.KIND, platform)
    outputs = _outputs(session.store.latest_done([tenant_id]), tenant_id)
    ctx = StepContext(tenant, platform, "", outputs, source_file=row["source_file"] or "")
    # No bulk snapshot for one tenant: each step reads its own resources, and the database
    # step logs in as the tenant's app role (the strongest proof of isolation).
    return [f"{step.name}: {problem}" for step in steps for problem in step.verify(ctx)]
