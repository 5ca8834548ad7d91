"""Tier change: `upgrade` and `downgrade` of one tenant with its data, and retired copies.

`change_tier` runs the `tier-change` flow (`flows.upgrading`) for a recorded tenant, as
`apply` does for a file whose tier changed: the same flow, so the data always moves. An
unfinished tier change is finished first, with the spec it started with (recorded in
its operation). `purge_retired` removes the source copies a tier change kept read-only,
once the tenant's `lifecycle.retention_days` have passed (`tenantctl purge` calls it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from controlplane.config.loading import TenantSource
from controlplane.engine.operating import Outcome
from controlplane.errors import ConfigError, ConflictError, SourceLocation
from controlplane.flows import upgrading
from controlplane.models import validating
from controlplane.models.platform import PlatformConfig, Tier, parse_tier
from controlplane.models.tenants import Tenant
from controlplane.service import lifecycle, operations, planning
from controlplane.service.sessions import Session
from controlplane.steps import database, migration

__all__ = [
    "KIND",
    "Retired",
    "change_tier",
    "check_direction",
    "purge_retired",
]

log = logging.getLogger(__name__)

KIND = upgrading.KIND
_CHANGEABLE = frozenset({"active"})


@dataclass(frozen=True)
class Retired:
    """A source copy a tier change retired, and whether this run removed it."""

    tenant_id: str
    tier: str
    location: str
    due: datetime
    removed: bool


def change_tier(
    session: Session, tenant_id: str, tier: str, *, out_dir: Path | None = None
) -> Outcome:
    """Move a recorded, active tenant and its data to `tier` (upgrade or downgrade).

    Raises:
        ConfigError: (exit 2) `tier` is no tier, or the tenant's limits exceed it.
        ConflictError: (exit 4) already on `tier`, not active, or another tier change
            is unfinished.
    """
    wanted = _tier(tier)
    unfinished = planning.unfinished_tier_change(session, tenant_id)
    if unfinished is not None:
        if unfinished.tenant.tier is not wanted:
            msg = (
                f"tenant '{tenant_id}' has an unfinished change to "
                f"{unfinished.tenant.tier.value}: finish it first with `tenantctl upgrade "
                f"{tenant_id} --tier {unfinished.tenant.tier.value}`"
            )
            raise ConflictError(msg)
        source = unfinished
    else:
        source = _changed(session, tenant_id, wanted)
    platform = planning.recorded_platform(session, tenant_id)
    _check_fits(source, platform)
    here = planning.recorded_session(session, tenant_id, out_dir)
    return operations.run(here, KIND, source, platform)


def check_direction(session: Session, tenant_id: str, tier: str, *, up: bool) -> None:
    """ConfigError (exit 2) unless `tier` is above (`up`) or below the recorded tier."""
    wanted = _tier(tier)
    recorded = Tenant.model_validate(session.store.get_tenant(tenant_id)["spec"]).tier
    order = list(Tier)
    if (order.index(wanted) > order.index(recorded)) is up or wanted is recorded:
        return
    command = "downgrade" if up else "upgrade"
    reason = f"{wanted.value} is {'below' if up else 'above'} its tier {recorded.value}"
    raise ConfigError(
        [(SourceLocation("command line", None, "--tier"), f"{reason}: use `tenantctl {command}`")]
    )


def _tier(value: str) -> Tier:
    try:
        return parse_tier(value)
    except ValueError as exc:
        raise ConfigError([(SourceLocation("command line", None, "--tier"), str(exc))]) from exc


def _changed(session: Session, tenant_id: str, wanted: Tier) -> TenantSource:
    recorded, _, _ = lifecycle.recorded(session, tenant_id)
    status = session.store.get_tenant(tenant_id)["status"]
    if status not in _CHANGEABLE:
        msg = f"tenant '{tenant_id}' is {status}: a tier change needs it active"
        raise ConflictError(msg)
    if recorded.tenant.tier is wanted:
        msg = f"tenant '{tenant_id}' is already {recorded.tenant.tier.value}: nothing to change"
        raise ConflictError(msg)
    tenant = recorded.tenant.model_copy(update={"tier": wanted})
    return TenantSource(Tenant.model_validate(tenant.model_dump()), recorded.file, "")


def _check_fits(source: TenantSource, platform: PlatformConfig) -> None:
    """The new tier's rules (limits within its ceilings, PCI level) hold for the tenant."""
    problems = validating.check_tenant(source.tenant, platform)
    if problems:
        raise ConfigError(
            [(SourceLocation(source.file, None, field), text) for field, text in problems]
        )


def purge_retired(
    session: Session,
    *,
    tenant_ids: Sequence[str] | None = None,
    now: datetime | None = None,
    force: bool = False,
) -> list[Retired]:
    """Remove retired source copies past their retention (every due one, or `force`: all of
    `tenant_ids`, e.g. for tenants being purged); each under the tenant's lease, audited.

    Returns every retired copy still on record, removed by this run or not yet due.
    """
    moment = now or session.clock()
    done = session.store.latest_done(list(tenant_ids) if tenant_ids is not None else None)
    found: list[Retired] = []
    for tenant_id, steps in sorted(done.items()):
        record = steps.get(migration.RESUME)
        retired = migration.retired(record.outputs) if record is not None else None
        if retired is None:
            continue
        where, tier, due = retired
        label = f"{where.database or where.schema} ({tier.value}, {where.target})"
        if not _still_there(session, tenant_id, tier):
            continue
        removed = force or due <= moment
        if removed:
            _remove(session, tenant_id, tier, label)
        found.append(Retired(tenant_id, tier.value, label, due, removed))
    return found


def _retired_unit(session: Session, tenant_id: str, tier: Tier) -> tuple[Tenant, PlatformConfig]:
    recorded, platform, _ = lifecycle.recorded(session, tenant_id)
    lifecycle_ = recorded.tenant.lifecycle.model_copy(update={"deletion_protection": False})
    old = recorded.tenant.model_copy(update={"tier": tier, "lifecycle": lifecycle_})
    return old, platform


def _still_there(session: Session, tenant_id: str, tier: Tier) -> bool:
    """The retired copy's workspace still manages something (and it is not live again)."""
    old, platform = _retired_unit(session, tenant_id, tier)
    recorded, _, _ = lifecycle.recorded(session, tenant_id)
    if recorded.tenant.tier is old.tier:
        return False  # the tenant moved back onto it: live, not retired
    provisioner, _ = session.database_drivers(platform)
    return bool(provisioner.outputs(database.unit_for(old, platform)))


def _remove(session: Session, tenant_id: str, tier: Tier, label: str) -> None:
    """`terraform destroy` of the retired copy's workspace, under the tenant's lease."""
    old, platform = _retired_unit(session, tenant_id, tier)
    provisioner, _ = session.database_drivers(platform)
    unit = database.unit_for(old, platform)
    lease = session.store.acquire(tenant_id, session.holder, wait=session.lock_wait)
    try:
        if unit.module == database.DEDICATED_POSTGRES:
            provisioner.apply(unit)  # deletion protection off in its state first
        provisioner.destroy(unit)
        session.store.audit(
            "tier-change.retired-purged", tenant_id, {"copy": label, "module": unit.module}
        )
    finally:
        session.store.release(lease)
    log.info("tenant %s: removed retired copy %s", tenant_id, label)
