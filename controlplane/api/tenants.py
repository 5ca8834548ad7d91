"""Platform read routes (`/v1/tenants`, `/v1/operations`, `/v1/audit`): viewers and up.

The mutations are in `mutations`.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from controlplane.api import auth, schemas
from controlplane.api.context import Svc
from controlplane.service import listing, offboarding, queries
from controlplane.service.tokens import Principal

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["platform"])

Viewer = Annotated[Principal, Depends(auth.platform("viewer"))]
Operator = Annotated[Principal, Depends(auth.platform("operator"))]
_PROBLEMS = schemas.problem_responses(
    {
        **schemas.AUTH_PROBLEMS,
        404: "unknown tenant or operation",
        422: "invalid input; `errors` names file, line and field",
    }
)


class TenantQuery(BaseModel):
    """Filters and paging of `GET /v1/tenants`."""

    tier: str | None = Field(None, description="Only this tier.")
    status: str | None = Field(None, description="Only this status.")
    cursor: str = Field("", description="`next` of the previous page.")
    limit: int = Field(100, ge=1, le=1000)


@router.get("/tenants", response_model=schemas.TenantPage, responses=_PROBLEMS)
def list_tenants(
    svc: Svc, _caller: Viewer, wanted: Annotated[TenantQuery, Query()]
) -> dict[str, Any]:
    """Recorded tenants by id, filtered by tier and status, a page at a time."""
    page = listing.tenants(
        svc.session,
        tier=wanted.tier,
        status=wanted.status,
        after=wanted.cursor,
        limit=wanted.limit,
    )
    following = None
    if page.next_cursor:
        kept = {k: v for k, v in {"tier": wanted.tier, "status": wanted.status}.items() if v}
        query = {**kept, "limit": wanted.limit, "cursor": page.next_cursor}
        following = "/v1/tenants?" + urlencode(query)
    return {"items": page.items, "next": following}


@router.get("/tenants/{tenant_id}", responses=_PROBLEMS)
def get_tenant(tenant_id: str, svc: Svc, _caller: Viewer) -> dict[str, Any]:
    """One tenant: spec, hostnames, DNS status, newest operations and their steps."""
    return queries.describe(svc.session, tenant_id)


@router.get("/operations/{operation_id}", response_model=schemas.Operation, responses=_PROBLEMS)
def get_operation(operation_id: str, svc: Svc, _caller: Viewer) -> dict[str, Any]:
    """An operation and its steps; poll it after a 202 until the status is final."""
    return listing.operation(svc.session, operation_id)


@router.get("/tenants/{tenant_id}/diff", response_model=schemas.Diff, responses=_PROBLEMS)
def diff_tenant(tenant_id: str, svc: Svc, _caller: Viewer) -> dict[str, Any]:
    """Field-level differences between a tenant's recorded spec and its live objects."""
    rows = listing.diff(svc.session, tenant_id)
    return {"tenant_id": tenant_id, "in_sync": not rows, "differences": rows}


@router.get("/tenants/{tenant_id}/verify", response_model=schemas.Verification, responses=_PROBLEMS)
def verify_tenant(tenant_id: str, svc: Svc, _caller: Viewer) -> dict[str, Any]:
    """Each onboarding step's check of the tenant's real resources (reads only)."""
    problems = listing.verify(svc.session, tenant_id)
    return {"tenant_id": tenant_id, "healthy": not problems, "problems": problems}


@router.get("/purge-candidates", response_model=schemas.PurgeCandidates, responses=_PROBLEMS)
def purge_candidates(
    svc: Svc,
    _caller: Viewer,
    tenant: Annotated[
        list[str] | None, Query(description="These tenants (default: every deleted one).")
    ] = None,
) -> dict[str, Any]:
    """What `tenantctl purge --dry-run` lists: each tenant purge would remove now, or why not.

    `POST /v1/tenants/{tenant_id}/purge` then purges one."""
    found = offboarding.purgeable(svc.session, tenant)
    return {"items": [{**dataclasses.asdict(c), "unexported": c.unexported} for c in found]}


class AuditQuery(BaseModel):
    """Filters and paging of `GET /v1/audit`."""

    tenant: str | None = Field(None, description="Only entries about this tenant.")
    action: str | None = Field(None, description="Only this action.")
    actor: str | None = Field(None, description="Only this actor.")
    before: int | None = Field(
        None, ge=1, le=2**63 - 1, description="`next` of the previous page (an entry id)."
    )
    limit: int = Field(100, ge=1, le=1000)


@router.get("/audit", response_model=schemas.AuditPage, responses=_PROBLEMS)
def audit_log(svc: Svc, _caller: Viewer, wanted: Annotated[AuditQuery, Query()]) -> dict[str, Any]:
    """The append-only audit log, newest first."""
    found = listing.AuditFilter(
        wanted.tenant, wanted.action, wanted.actor, wanted.before, wanted.limit
    )
    items = listing.audit(svc.session, found)
    following = None
    if len(items) == wanted.limit:
        kept = {"tenant": wanted.tenant, "action": wanted.action, "actor": wanted.actor}
        query = {k: v for k, v in kept.items() if v}
        following = "/v1/audit?" + urlencode(
            {**query, "limit": wanted.limit, "before": items[-1]["id"]}
        )
    return {"items": items, "next": following}
