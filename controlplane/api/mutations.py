"""Platform mutations: create, update, suspend, resume, upgrade, downgrade, export, delete,
restore (operators and up) and purge (admins); 202 with an operation URL (the sweep of
retired tier-change copies, which has no operation, answers 200 once done).

Each runs in the background through `service.submitting` (the same lifecycle functions
as the CLI) and answers once its operation is recorded. Every attempt, accepted or
refused, is audited with the caller's token, the tenant, the outcome and the request id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from controlplane.api import auth, context, schemas
from controlplane.api.context import Svc
from controlplane.service import ControlPlaneError, queries, submitting, tokens, upgrading
from controlplane.service.tokens import Principal

__all__ = ["accept", "router"]

router = APIRouter(prefix="/v1", tags=["platform"])

Operator = Annotated[Principal, Depends(auth.platform("operator"))]
Admin = Annotated[Principal, Depends(auth.platform("admin"))]
Start = Callable[[], submitting.Accepted]
_PROBLEMS = schemas.problem_responses(
    {
        **schemas.AUTH_PROBLEMS,
        404: "unknown tenant",
        409: "recorded already, hostname taken, wrong status for this, or the tenant is locked",
        422: "invalid input; `errors` names file, line and field",
    }
)
_CREATE_PROBLEMS = {
    **_PROBLEMS,
    **schemas.problem_responses({415: "the body is neither YAML nor JSON"}),
}
_FILE_TYPES = (
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
    "application/json",
)
_PATCH_TYPES = ("application/merge-patch+json", "application/json")
_EXAMPLE_YAML = """tenant:
  id: tenant-100
  name: "Acme Retail"
  tier: enterprise
  region: us-east-1
  domains: {subdomain: acme, custom: [shop.acme.com]}
"""
_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "description": "A tenant file (root key `tenant:`), as YAML or JSON.",
        "content": {
            "application/yaml": {"schema": {"type": "string"}, "example": _EXAMPLE_YAML},
            "application/json": {
                "schema": {"type": "object", "required": ["tenant"]},
                "example": {
                    "tenant": {
                        "id": "tenant-100",
                        "name": "Acme Retail",
                        "tier": "enterprise",
                        "region": "us-east-1",
                    }
                },
            },
        },
    }
}


async def accept(  # noqa: PLR0913 - the last one keyword-only, defaulted
    request: Request,
    response: Response,
    caller: Principal,
    action: str,
    start: Start,
    *,
    operations_at: str = "/v1/operations",
) -> dict[str, str]:
    """Run `start` and the audit write off the event loop; answer 202 with the operation
    (its URL under `operations_at`: the tenant surface has its own)."""
    tenant_id = request.path_params.get("tenant_id")
    try:
        accepted = await run_in_threadpool(start)
    except (ControlPlaneError, HTTPException) as exc:
        status = getattr(exc, "http_status", getattr(exc, "status_code", 500))
        reason = str(getattr(exc, "message", getattr(exc, "detail", "")))[:500]
        await run_in_threadpool(
            context.audit,
            request,
            action,
            actor=caller.actor,
            tenant_id=tenant_id,
            outcome="refused",
            status=status,
            error=reason,
        )
        raise
    url = f"{operations_at}/{accepted.operation_id}" if accepted.operation_id else ""
    await run_in_threadpool(
        context.audit,
        request,
        action,
        actor=caller.actor,
        tenant_id=accepted.tenant_id,
        outcome="accepted" if url else "unchanged",
        operation=accepted.operation_id,
    )
    if url:
        response.headers["Location"] = url
    return {
        "tenant_id": accepted.tenant_id,
        "operation_id": accepted.operation_id,
        "operation_url": url,
    }


def _media(request: Request, allowed: tuple[str, ...]) -> str:
    media = request.headers.get("content-type", allowed[0]).split(";")[0].strip()
    if media not in allowed:
        raise HTTPException(415, f"send the body as {' or '.join(allowed)}, not {media}")
    return media


@router.post(
    "/tenants",
    status_code=202,
    response_model=schemas.Accepted,
    responses=_CREATE_PROBLEMS,
    openapi_extra=_CREATE_BODY,
)
async def create_tenant(
    request: Request, response: Response, svc: Svc, caller: Operator
) -> dict[str, str]:
    """Validate a tenant file like `tenantctl validate` and onboard it in the background.

    Answers 202 once the operation is recorded (`Location` and `operation_url` follow it).
    """
    body = await request.body()

    def start() -> submitting.Accepted:
        media = _media(request, _FILE_TYPES)
        source = submitting.parse_tenant(body, media, svc.submissions.platform)
        return svc.submissions.create(source, actor=caller.actor)

    return await accept(request, response, caller, "api.tenant.create", start)


_UPDATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": schemas.Unchanged,
        "description": "nothing started: the spec is applied already, or the tenant is left "
        "as it is (suspended, or observe-only: paused or `lifecycle.management: observe`)",
    },
    202: {"model": schemas.Accepted, "description": "the changed spec is being applied"},
    **_CREATE_PROBLEMS,
}
_PATCH_BODY = {
    "requestBody": {
        "required": True,
        "description": "A JSON merge patch (RFC 7396) of the recorded tenant file; "
        "`null` removes a field.",
        "content": {
            media: {
                "schema": {"type": "object", "required": ["tenant"]},
                "example": {"tenant": {"features": {"ai_agents": False}}},
            }
            for media in _PATCH_TYPES
        },
    }
}


async def _updated(request: Request, response: Response, caller: Principal, start: Start) -> Any:
    """`accept` an update; an unchanged spec started nothing: 200, no operation."""
    accepted = await accept(request, response, caller, "api.tenant.update", start)
    if not accepted["operation_id"]:
        unchanged = {"tenant_id": accepted["tenant_id"], "result": "unchanged"}
        return JSONResponse(unchanged, status_code=200)
    return accepted


@router.put(
    "/tenants/{tenant_id}",
    status_code=202,
    response_model=None,
    responses=_UPDATE_RESPONSES,
    openapi_extra=_CREATE_BODY,
)
async def replace_tenant(
    tenant_id: str, request: Request, response: Response, svc: Svc, caller: Operator
) -> Any:
    """Apply a changed tenant file (like `tenantctl apply -f` of that file), validated like
    `POST /v1/tenants`; the id in the body must be `{tenant_id}`.

    202 with the operation, or 200 when the spec is applied already.
    """
    body = await request.body()

    def start() -> submitting.Accepted:
        media = _media(request, _FILE_TYPES)
        platform = svc.submissions.platform
        source = submitting.parse_tenant(body, media, platform, tenant_id=tenant_id)
        return svc.submissions.update(source, actor=caller.actor)

    return await _updated(request, response, caller, start)


@router.patch(
    "/tenants/{tenant_id}",
    status_code=202,
    response_model=None,
    responses=_UPDATE_RESPONSES,
    openapi_extra=_PATCH_BODY,
)
async def patch_tenant(
    tenant_id: str, request: Request, response: Response, svc: Svc, caller: Operator
) -> Any:
    """Change some fields of a recorded tenant (a JSON merge patch of its file), then apply
    it like `PUT`. Problems name the fields; lines are those of the merged file
    (`merged.json`: the recorded spec with the patch applied, indented by two).
    """
    body = await request.body()

    def start() -> submitting.Accepted:
        _media(request, _PATCH_TYPES)
        merged = submitting.merge_patch(queries.get(svc.session, tenant_id)["spec"], body)
        source = submitting.parse_tenant(
            merged,
            "application/json",
            svc.submissions.platform,
            label="merged.json",
            tenant_id=tenant_id,
        )
        return svc.submissions.update(source, actor=caller.actor)

    return await _updated(request, response, caller, start)


_LIFECYCLE: dict[str, tuple[Callable[..., submitting.Accepted], str]] = {
    "suspend": (
        submitting.Submissions.suspend,
        "Take the tenant's traffic off (ingress, DNS, app-role login); its data stays.",
    ),
    "resume": (
        submitting.Submissions.resume,
        "Bring a suspended tenant back: login, network, DNS, health checks, `active`.",
    ),
    "restore": (
        submitting.Submissions.restore,
        "Bring a deleted, not yet purged tenant back: login, network, DNS, `active`.",
    ),
    "export": (
        submitting.Submissions.export,
        "Take a verified, encrypted export of the tenant's data; the tenant stays as it is.",
    ),
}


def _lifecycle_route(action: str) -> None:
    """`POST /v1/tenants/{tenant_id}/ACTION`: one recorded tenant's lifecycle operation."""
    method, summary = _LIFECYCLE[action]

    async def route(
        tenant_id: str, request: Request, response: Response, svc: Svc, caller: Operator
    ) -> dict[str, Any]:
        return await accept(
            request,
            response,
            caller,
            f"api.tenant.{action}",
            start=lambda: method(svc.submissions, tenant_id, actor=caller.actor),
        )

    route.__doc__ = summary
    router.add_api_route(
        f"/tenants/{{tenant_id}}/{action}",
        route,
        methods=["POST"],
        name=f"{action}_tenant",
        status_code=202,
        response_model=schemas.Accepted,
        responses=_PROBLEMS,
    )


for _action in _LIFECYCLE:
    _lifecycle_route(_action)


@router.delete(
    "/tenants/{tenant_id}",
    status_code=202,
    response_model=schemas.Accepted,
    responses=_PROBLEMS,
)
async def delete_tenant(  # noqa: PLR0913, PLR0917 - FastAPI injects each
    tenant_id: str,
    request: Request,
    response: Response,
    svc: Svc,
    caller: Operator,
    force: Annotated[
        bool, Query(description="Delete despite `lifecycle.deletion_protection` (audited).")
    ] = False,
) -> dict[str, Any]:
    """Delete a tenant (`tenantctl delete`): traffic off, a verified encrypted export, then
    `deleted` until its retention ends (`POST .../restore` brings it back until then)."""
    return await accept(
        request,
        response,
        caller,
        "api.tenant.delete",
        start=lambda: svc.submissions.delete(tenant_id, actor=caller.actor, force=force),
    )


@router.post(
    "/tenants/{tenant_id}/purge",
    status_code=202,
    response_model=schemas.Accepted,
    responses=_PROBLEMS,
)
async def purge_tenant(  # noqa: PLR0913, PLR0917 - FastAPI injects each
    tenant_id: str,
    request: Request,
    response: Response,
    svc: Svc,
    caller: Admin,
    without_export: Annotated[
        bool, Query(description="Purge a tenant that has no verified export (audited).")
    ] = False,
) -> dict[str, Any]:
    """Purge a deleted tenant past its retention (`tenantctl purge TENANT`): its resources
    in reverse order, its key shredded, a receipt in the audit log. Admins only."""
    return await accept(
        request,
        response,
        caller,
        "api.tenant.purge",
        start=lambda: svc.submissions.purge(
            tenant_id, actor=caller.actor, without_export=without_export
        ),
    )


@router.post("/purge-retired", response_model=schemas.RetiredCopies, responses=_PROBLEMS)
async def purge_retired(request: Request, svc: Svc, caller: Admin) -> dict[str, Any]:
    """Remove the copies tier changes retired once their retention has passed, each under its
    tenant's lease and audited (what a plain `tenantctl purge` does after the tenants).
    Lists every retired copy still on record; `removed` says which went. Admins only."""

    def sweep() -> list[upgrading.Retired]:
        worker = tokens.acting(svc.session, caller.actor)
        return upgrading.purge_retired(worker, now=worker.clock())

    found = await context.audited(request, caller, "api.purge.retired", sweep)
    return {"items": [dataclasses.asdict(r) for r in found]}


class TierChange(BaseModel):
    """The tier to move a tenant to."""

    model_config = {"json_schema_extra": {"examples": [{"tier": "enterprise"}]}}
    tier: str = Field(description="standard, enterprise or premium.")


def _tier_route(action: str, *, up: bool) -> None:
    """`POST /v1/tenants/{tenant_id}/upgrade|downgrade`: a tier change with the data."""

    async def route(  # noqa: PLR0913, PLR0917 - FastAPI injects each
        tenant_id: str,
        wanted: TierChange,
        request: Request,
        response: Response,
        svc: Svc,
        caller: Operator,
    ) -> dict[str, Any]:
        return await accept(
            request,
            response,
            caller,
            f"api.tenant.{action}",
            start=lambda: svc.submissions.change_tier(
                tenant_id, wanted.tier, actor=caller.actor, up=up
            ),
        )

    route.__doc__ = (
        f"Move the tenant to a tier {'above' if up else 'below'} its own (`tenantctl {action}"
        "`): provision the target, copy the data online, verify it, cut over; the old copy "
        "stays read-only until its retention ends."
    )
    router.add_api_route(
        f"/tenants/{{tenant_id}}/{action}",
        route,
        methods=["POST"],
        name=f"{action}_tenant",
        status_code=202,
        response_model=schemas.Accepted,
        responses=_PROBLEMS,
    )


_tier_route("upgrade", up=True)
_tier_route("downgrade", up=False)
