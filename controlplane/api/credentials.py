"""Token management over HTTP (`/v1/tokens`): admins only, like `tenantctl token`.

A new token is in the 201 body once and never again. Every attempt is audited: the
service writes `token.created`/`token.revoked` as the caller, with the request id; a
refused attempt is an `api.token.*` entry with outcome `refused`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from controlplane.api import auth, context, problems, schemas
from controlplane.api.context import Svc
from controlplane.service import tokens
from controlplane.service.tokens import Principal

__all__ = ["router"]

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])
Admin = Annotated[Principal, Depends(auth.platform("admin"))]
_PROBLEMS = schemas.problem_responses(
    {
        **schemas.AUTH_PROBLEMS,
        404: "unknown token or tenant",
        422: "both or neither of role and tenant_id, an unknown role, a bad lifetime",
    }
)


class TokenRequest(BaseModel):
    """A token to mint: a platform token (`role`) or a tenant token (`tenant_id`)."""

    model_config = {"json_schema_extra": {"examples": [{"name": "ci", "role": "operator"}]}}
    name: str = Field(min_length=1, max_length=100)
    role: str | None = None
    tenant_id: str | None = None
    expires_in: int = Field(
        30 * 86400,
        ge=1,
        le=int(tokens.MAX_TTL.total_seconds()),
        description="Lifetime in seconds (at most 366 days).",
    )


@router.get("", responses=_PROBLEMS)
def list_tokens(svc: Svc, _caller: Admin) -> dict[str, Any]:
    """Every token's record and status (never a token itself)."""
    return {"items": tokens.list_tokens(svc.session)}


@router.post("", status_code=201, responses=_PROBLEMS)
async def create_token(
    wanted: TokenRequest, request: Request, svc: Svc, caller: Admin
) -> dict[str, Any]:
    """Mint a token; the `token` field of this answer is the only time it is shown."""
    note = {"request_id": problems.request_id(request), "outcome": "accepted"}

    def create() -> tuple[str, tokens.TokenRow]:
        return tokens.create(
            tokens.acting(svc.session, caller.actor),
            wanted.name,
            role=wanted.role,
            tenant_id=wanted.tenant_id,
            ttl=timedelta(seconds=wanted.expires_in),
            note=note,
        )

    token, row = await context.audited(request, caller, "api.token.create", create)
    return {"token": token, **row.__dict__, "status": tokens.status_of(row)}


@router.delete("/{token_id}", responses=_PROBLEMS)
async def revoke_token(token_id: str, request: Request, svc: Svc, caller: Admin) -> dict[str, Any]:
    """Revoke a token: every replica refuses it from the next request on."""
    note = {"request_id": problems.request_id(request), "outcome": "accepted"}
    row = await context.audited(
        request,
        caller,
        "api.token.revoke",
        lambda: tokens.revoke(tokens.acting(svc.session, caller.actor), token_id, note),
    )
    return {**row.__dict__, "status": tokens.status_of(row)}
