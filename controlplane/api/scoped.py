"""The tenant surface, `/v1/tenant/{tenant_id}/...`: tenant tokens of that tenant only.

A tenant's admins read their own status, hostnames, operations and audit entries (only
the entries about their tenant: platform actions elsewhere never show here), and request
an export of their data. Platform
tokens are refused on this surface, as tenant tokens are on the platform one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from controlplane.api import auth, mutations, schemas
from controlplane.api.context import Svc
from controlplane.service import listing, queries
from controlplane.service.tokens import Principal

__all__ = ["router"]

router = APIRouter(prefix="/v1/tenant/{tenant_id}", tags=["tenant"])
Own = Annotated[Principal, Depends(auth.tenant())]
_PROBLEMS = schemas.problem_responses(
    {
        401: "no token, or an unknown, expired or revoked one",
        403: "a platform token, or another tenant's token",
        404: "the tenant is not recorded",
        422: "a bad query parameter",
    }
)
_SHOWN = ("id", "name", "tier", "region", "status", "generation", "created_at", "updated_at")


@router.get("", responses=_PROBLEMS)
def status(tenant_id: str, svc: Svc, _caller: Own) -> dict[str, Any]:
    """The tenant's status and hostnames."""
    row = queries.get(svc.session, tenant_id)
    return {
        **{k: row[k] for k in _SHOWN},
        "hosts": svc.session.store.hosts_of(tenant_id),
    }


@router.get("/operations", responses=_PROBLEMS)
def operations(tenant_id: str, svc: Svc, _caller: Own) -> dict[str, Any]:
    """The tenant's newest operations (without the platform config they recorded)."""
    found = svc.session.store.operations_of(tenant_id, limit=20)
    for row in found:
        row.pop("context", None)
    return {"items": found}


@router.get("/operations/{operation_id}", response_model=schemas.Operation, responses=_PROBLEMS)
def operation(tenant_id: str, operation_id: str, svc: Svc, _caller: Own) -> dict[str, Any]:
    """One of the tenant's operations and its steps (another tenant's is not found)."""
    found = listing.operation(svc.session, operation_id)
    if found["tenant_id"] != tenant_id:
        raise HTTPException(404, f"no operation '{operation_id}' of tenant '{tenant_id}'")
    return found


@router.post(
    "/export",
    status_code=202,
    response_model=schemas.Accepted,
    responses={
        **_PROBLEMS,
        **schemas.problem_responses({409: "purged, or an operation of the tenant runs"}),
    },
)
async def export(
    tenant_id: str, request: Request, response: Response, svc: Svc, caller: Own
) -> dict[str, Any]:
    """Request a verified, encrypted export of the tenant's data; follow `operation_url`
    (on this surface) until it is final."""
    return await mutations.accept(
        request,
        response,
        caller,
        "api.tenant.export",
        lambda: svc.submissions.export(tenant_id, actor=caller.actor),
        operations_at=f"/v1/tenant/{tenant_id}/operations",
    )


@router.get("/audit", response_model=schemas.AuditPage, responses=_PROBLEMS)
def audit(
    tenant_id: str,
    svc: Svc,
    _caller: Own,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Audit entries about this tenant only, newest first."""
    items = listing.audit(svc.session, listing.AuditFilter(tenant_id=tenant_id, limit=limit))
    return {"items": items, "next": None}
