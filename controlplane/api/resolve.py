"""`GET /v1/resolve`: which tenant a request belongs to, answered from memory.

By host (`?host=`, normalised) or by tenant id (`X-Tenant-ID`). An unknown or
ambiguous host is 404, never a default tenant; a suspended tenant is 403, a deleted one
410, one not active yet 503 — each problem names the tenant and its status. Needs a
platform token (the gateway's, any role).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from controlplane.api import auth, context, problems, schemas
from controlplane.service import ControlPlaneError
from controlplane.service.resolving import Decision

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["resolver"])
_viewer = auth.platform("viewer")
_STATUS = {"unknown": 404, "ambiguous": 404, "suspended": 403, "deleted": 410, "not_ready": 503}
_DETAIL = {
    "unknown": "no tenant owns {key}",
    "ambiguous": "{key} names more than one tenant; none is chosen",
    "suspended": "tenant '{tenant}' is suspended: not routed",
    "deleted": "tenant '{tenant}' is deleted: not routed",
    "not_ready": "{key}: not routable yet (tenant status or resolver index not ready)",
}
_PROBLEMS = schemas.problem_responses(
    {
        **schemas.AUTH_PROBLEMS,
        403: "suspended tenant (or the token may not resolve)",
        404: "unknown or ambiguous host: never a default tenant",
        410: "deleted tenant",
        422: "no host and no X-Tenant-ID, or not a hostname",
        503: "tenant not active yet, or the index is loading",
    }
)


# The route reads its query and header itself (and checks the token by a call, not a
# dependency): FastAPI's parameter injection costs more than the lookup it would wrap, on
# the one route every request of the platform passes. These document what it reads.
_PARAMETERS = {
    "parameters": [
        {
            "name": "host",
            "in": "query",
            "required": False,
            "description": "Host header of the request to route.",
            "schema": {"type": "string"},
            "example": "shop.acme.com",
        },
        {
            "name": "X-Tenant-ID",
            "in": "header",
            "required": False,
            "description": "Resolve by tenant id instead of a host.",
            "schema": {"type": "string"},
        },
    ]
}


@router.get(
    "/resolve", response_model=schemas.Routing, responses=_PROBLEMS, openapi_extra=_PARAMETERS
)
async def resolve(request: Request) -> Any:
    """The routing context of the request's tenant: id, tier, status, region, database
    reference, features.

    Async on purpose: the answer comes from memory, so it never waits for a thread.
    """
    await _viewer(request)
    svc = context.services(request)
    host = request.query_params.get("host")
    tenant_id = request.headers.get("x-tenant-id")
    request_id = problems.request_id(request)
    if not host and not tenant_id:
        return problems.problem(
            request, 422, "give ?host= or the X-Tenant-ID header", error="ConfigError", exit_code=2
        )
    try:
        decision = svc.resolver.resolve(host=host, tenant_id=tenant_id, request_id=request_id)
    except ControlPlaneError:
        svc.resolver.refuse(host or "", request_id)
        raise
    if decision.routed and decision.tenant is not None:
        # A response as is: the body is built from the index, the model only documents it.
        return JSONResponse(_routing(decision))
    return _refusal(request, decision)


def _routing(decision: Decision) -> dict[str, Any]:
    row = decision.tenant
    assert row is not None  # noqa: S101 - routed decisions carry their tenant
    return {
        "tenant_id": row.tenant_id,
        "tier": row.tier,
        "status": row.status,
        "region": row.region,
        "database": row.database,
        "features": row.features,
        "host": decision.host if "." in decision.host else None,
    }


def _refusal(request: Request, decision: Decision) -> JSONResponse:
    status = _STATUS.get(decision.outcome, 404)
    tenant = decision.tenant.tenant_id if decision.tenant else None
    detail = _DETAIL.get(decision.outcome, "{key}: not routed").format(
        key=decision.host, tenant=tenant
    )
    extra: dict[str, Any] = {"outcome": decision.outcome, "tenant_id": tenant}
    if decision.tenant is not None:
        extra["tenant_status"] = decision.tenant.status
    if decision.candidates:
        extra["candidates"] = len(decision.candidates)
    exit_code = 3 if status in (404, 410) else 1
    return problems.problem(
        request,
        status,
        detail,
        error="NotFoundError" if status == 404 else "",
        exit_code=exit_code,
        **extra,
    )
