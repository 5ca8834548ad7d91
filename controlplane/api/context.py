"""What every route needs, built once per process: the session and the long-lived parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from controlplane.api.problems import request_id
from controlplane.service import ControlPlaneError, Session, metrics, resolving, submitting, tokens
from controlplane.service.tokens import Principal

__all__ = ["Services", "Svc", "audit", "audited", "services"]

T = TypeVar("T")


@dataclass
class Services:
    """The session of this API process and what lives as long as it."""

    session: Session
    submissions: submitting.Submissions
    resolver: resolving.Resolver
    metrics: metrics.Metrics
    tokens: tokens.TokenCache


def services(request: Request) -> Services:
    """The services of the app serving `request` (a plain function: no IO, no thread)."""
    found: Services = request.app.state.services
    return found


async def _current(request: Request) -> Services:
    return services(request)


# The services as a dependency: async, so FastAPI does not spend a thread on it.
Svc = Annotated[Services, Depends(_current)]


def audit(
    request: Request,
    action: str,
    *,
    actor: str,
    tenant_id: str | None,
    outcome: str,
    **detail: object,
) -> None:
    """Append an audit entry about this request (actor, tenant, action, outcome, request id)."""
    tokens.audit_request(
        services(request).session,
        action,
        actor=actor,
        tenant_id=tenant_id,
        detail={
            "outcome": outcome,
            "request_id": request_id(request),
            "method": request.method,
            "path": request.url.path,
            **detail,
        },
    )


async def audited(request: Request, caller: Principal, action: str, call: Callable[[], T]) -> T:
    """Run `call` off the event loop; a refusal is audited as `action` (outcome refused)."""
    try:
        return await run_in_threadpool(call)
    except ControlPlaneError as exc:
        await run_in_threadpool(
            audit,
            request,
            action,
            actor=caller.actor,
            tenant_id=None,
            outcome="refused",
            status=exc.http_status,
            error=exc.message[:500],
        )
        raise
