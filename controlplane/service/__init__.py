"""The one service layer: CLI, API and workers call these modules, never drivers or state.

- `inputs`: load and validate tenant files and platform.yaml
- `sessions`: the state store and the drivers of one process (`open_session`)
- `operations`: run any flow for a tenant under a lease; `apply` a set of files
- `fleets`: a directory as a fleet: tenants whose file is gone, observe-only, the guard
- `planning`: plan, diff, verify and drift (read-only, one snapshot per backend)
- `reconciling`: reconcile passes and the watch loop; pause/resume reconciling a tenant
- `queries`: tenants, one tenant in detail, the audit log
- `rendering`: GitOps files
- `lifecycle`: create, suspend and resume one tenant
- `crd_source`: the `Tenant` custom resource (its CRD, Tenant objects as tenant files)
- `offboarding`: export, delete, purge and restore (verified exports, retention, shredding)
- `queueing`: operations queued for `tenantctl worker` (procrastinate) and what a job runs
- `upgrading`: tier change (upgrade/downgrade) with the tenant's data; retired copies
- `tokens`, `resolving`, `listing`, `submitting`, `metrics`: what the HTTP API serves
  (platform and tenant tokens, the host resolver, pages, background operations, /metrics)
"""

from controlplane.engine.running import StepEvent
from controlplane.errors import ControlPlaneError
from controlplane.service import (
    crd_source,
    fleets,
    inputs,
    lifecycle,
    listing,
    metrics,
    offboarding,
    operations,
    planning,
    queries,
    queueing,
    reconciling,
    rendering,
    resolving,
    sessions,
    submitting,
    tokens,
    upgrading,
)
from controlplane.service.failpoints import FAULT_ENV, FAULT_IN_STEP_ENV
from controlplane.service.sessions import Session, open_session

__all__ = [
    "FAULT_ENV",
    "FAULT_IN_STEP_ENV",
    "ControlPlaneError",
    "Session",
    "StepEvent",
    "crd_source",
    "fleets",
    "inputs",
    "lifecycle",
    "listing",
    "metrics",
    "offboarding",
    "open_session",
    "operations",
    "planning",
    "queries",
    "queueing",
    "reconciling",
    "rendering",
    "resolving",
    "sessions",
    "submitting",
    "tokens",
    "upgrading",
]
