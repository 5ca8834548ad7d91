"""Two auth surfaces that never accept each other's tokens.

`platform(role)` guards `/v1/...`: a platform token whose role includes `role`.
`tenant()` guards `/v1/tenant/{tenant_id}/...`: a tenant token minted for that tenant.
Every refusal (no token, unknown, expired, revoked, wrong surface, wrong tenant, role
too low) is written to the audit log with the actor, tenant, action, outcome and
request id before the 401/403 goes out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from controlplane.api import context
from controlplane.service import tokens
from controlplane.service.tokens import Forbidden, Principal, Unauthenticated

__all__ = ["ANONYMOUS", "platform", "tenant"]

ANONYMOUS = "anonymous"


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _action(request: Request) -> str:
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', request.url.path)}"


def _denied(
    request: Request,
    actor: str,
    tenant_id: str | None,
    exc: tokens.Forbidden | tokens.Unauthenticated,
) -> None:
    context.audit(
        request,
        "auth.denied",
        actor=actor,
        tenant_id=tenant_id,
        outcome="denied",
        route=_action(request),
        status=exc.http_status,
        reason=exc.message,
    )


def _authenticate(request: Request, tenant_id: str | None) -> Principal:
    try:
        found = context.services(request)
        return tokens.authenticate(found.session, _bearer(request), found.tokens)
    except Unauthenticated as exc:
        _denied(request, ANONYMOUS, tenant_id, exc)
        raise


async def _principal(request: Request, tenant_id: str | None) -> Principal:
    """From this replica's token cache without leaving the event loop, else from the store."""
    cached = tokens.cached(context.services(request).tokens, _bearer(request))
    if cached is not None:
        return cached
    return await run_in_threadpool(_authenticate, request, tenant_id)


async def _refuse(request: Request, actor: str, tenant_id: str | None, refusal: Forbidden) -> None:
    await run_in_threadpool(_denied, request, actor, tenant_id, refusal)
    raise refusal


def _platform_refusal(principal: Principal, role: str) -> Forbidden | None:
    if principal.kind != tokens.PLATFORM:
        return Forbidden(
            f"a tenant token is valid only under /v1/tenant/{principal.tenant_id}/ — "
            "platform routes need a platform token"
        )
    if not principal.allows(role):
        return Forbidden(f"role '{principal.role}' may not do this: it needs '{role}'")
    return None


def _tenant_refusal(principal: Principal, target: str) -> Forbidden | None:
    if principal.kind != tokens.TENANT:
        return Forbidden(
            "platform tokens are not valid on /v1/tenant/...: use a tenant token "
            "(`tenantctl token create --tenant ID`)"
        )
    if principal.tenant_id != target:
        return Forbidden(f"this token is for another tenant, not '{target}'")
    return None


Guard = Callable[[Request], Awaitable[Principal]]


def platform(role: str) -> Guard:
    """A dependency: the caller's platform token, whose role includes `role`."""

    async def guard(request: Request) -> Principal:
        target = request.path_params.get("tenant_id")
        principal = await _principal(request, target)
        refusal = _platform_refusal(principal, role)
        if refusal is not None:
            await _refuse(request, principal.actor, target or principal.tenant_id, refusal)
        return principal

    return guard


def tenant() -> Guard:
    """A dependency: a tenant token minted for the `{tenant_id}` of the path."""

    async def guard(request: Request) -> Principal:
        target = str(request.path_params.get("tenant_id", ""))
        principal = await _principal(request, target)
        refusal = _tenant_refusal(principal, target)
        if refusal is not None:
            await _refuse(request, principal.actor, target, refusal)
        return principal

    return guard
