"""The FastAPI application: one session, the resolver index and background operations.

`create_app` wires the routers (platform, tenant surface, resolver, health) over one
`Session`; the lifespan loads the resolver index, follows tenant changes through
LISTEN/NOTIFY and, at shutdown, lets running operations stop at a step boundary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from controlplane.api import credentials, health, mutations, problems, resolve, scoped, tenants
from controlplane.api.context import Services
from controlplane.service import Session, metrics, resolving, submitting, tokens

__all__ = ["create_app"]

_DESCRIPTION = """The tenantctl control plane over HTTP: the same service layer as the CLI.

Mutations answer `202 Accepted` with an operation URL. Errors are RFC 9457 problem
details carrying the CLI's exit code (`exit_code`) and the request id. Platform routes
take platform tokens (roles admin, operator, viewer); `/v1/tenant/{id}/...` takes tenant
tokens of that tenant only. Send `Authorization: Bearer <token>`.
"""


def create_app(session: Session, platform: Any, *, audit_every: float = 10.0) -> FastAPI:
    """The API over `session`, creating tenants with `platform` (a PlatformConfig).

    `audit_every`: seconds between the resolver's aggregated failure audit entries.
    """
    meter = metrics.Metrics(session, platform)
    seen = tokens.TokenCache()
    services = Services(
        session=session,
        submissions=submitting.Submissions(session, platform),
        resolver=resolving.Resolver(
            session,
            on_decision=meter.observe_decision,
            forget_token=seen.forget,
            flush_every=audit_every,
        ),
        metrics=meter,
        tokens=seen,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        services.resolver.start()
        try:
            yield
        finally:
            services.resolver.stop()
            services.submissions.close()

    app = FastAPI(
        title="tenantctl",
        version="1",
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.services = services
    problems.install(app)
    # The resolver first: it is on every request's path, and routes are matched in order.
    for module in (resolve, health, tenants, mutations, credentials, scoped):
        app.include_router(module.router)
    return app
