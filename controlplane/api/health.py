"""Liveness, readiness and Prometheus metrics: no token (probes and scrapers have none)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from controlplane.api import schemas
from controlplane.api.context import Svc
from controlplane.service import listing
from controlplane.service.metrics import CONTENT_TYPE

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=schemas.Health)
async def healthz() -> dict[str, str]:
    """The process answers (it does not look at the state store, nor take a thread)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=schemas.Readiness,
    responses={503: {"model": schemas.Readiness, "description": "not ready: see `checks`"}},
)
def readyz(svc: Svc) -> Any:
    """Ready when the state store answers, its schema is current and the resolver index
    is loaded; 503 with the failing check otherwise."""
    found = listing.readiness(svc.session)
    checks = dict(found.checks)
    index = svc.resolver.index
    checks["resolver_index"] = f"{index.size()} tenants" if index.loaded else "not loaded"
    ready = found.ready and index.loaded
    body = {"ready": ready, "checks": checks}
    return body if ready else JSONResponse(body, status_code=503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
)
def metrics(svc: Svc) -> Response:
    """Prometheus metrics: tenants, operations, resolver requests and latency."""
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE)
