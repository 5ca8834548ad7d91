"""Response bodies of the API, with the examples the OpenAPI document shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AUTH_PROBLEMS",
    "Accepted",
    "AuditEntry",
    "AuditPage",
    "Diff",
    "Health",
    "Operation",
    "Problem",
    "PurgeCandidate",
    "PurgeCandidates",
    "Readiness",
    "RetiredCopies",
    "Routing",
    "TenantPage",
    "TenantSummary",
    "Unchanged",
    "Verification",
    "problem_responses",
]


# What any platform route may answer about its token.
AUTH_PROBLEMS = {
    401: "no token, or an unknown, expired or revoked one",
    403: "the token may not do this (role, or a tenant token)",
}


def problem_responses(texts: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries: each status answers a `Problem` (problem+json)."""
    content = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        status: {"model": Problem, "description": text, "content": content}
        for status, text in texts.items()
    }


def _example(value: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [value]})


class Problem(BaseModel):
    """RFC 9457 problem details, with the CLI's exit code and the request id."""

    model_config = _example(
        {
            "type": "urn:tenantctl:problem:ConfigError",
            "title": "Invalid input",
            "status": 422,
            "detail": "request.yaml:4: tenant.tier: Input should be 'standard', ...",
            "instance": "/v1/tenants",
            "error": "ConfigError",
            "message": "request.yaml:4: tenant.tier: Input should be 'standard', ...",
            "exit_code": 2,
            "request_id": "5f0c1d...",
            "errors": [
                {
                    "file": "request.yaml",
                    "line": 4,
                    "field": "tenant.tier",
                    "message": "Input should be 'standard', 'enterprise' or 'premium'",
                }
            ],
        }
    )
    type: str
    title: str
    status: int
    detail: str
    instance: str
    error: str
    message: str
    exit_code: int
    request_id: str
    errors: list[dict[str, Any]] | None = None


class Health(BaseModel):
    """The process answers."""

    model_config = _example({"status": "ok"})
    status: str


class Readiness(BaseModel):
    """Whether this replica can serve, and each check."""

    model_config = _example(
        {
            "ready": True,
            "checks": {"state_store": "ok", "migrations": "current", "resolver_index": "2 tenants"},
        }
    )
    ready: bool
    checks: dict[str, str]


class TenantSummary(BaseModel):
    """One recorded tenant."""

    model_config = _example(
        {
            "id": "tenant-100",
            "name": "Acme Retail",
            "tier": "enterprise",
            "region": "us-east-1",
            "status": "active",
            "generation": 1,
            "created_at": "2026-12-01T09:00:00Z",
            "updated_at": "2026-12-01T09:01:00Z",
        }
    )
    id: str
    name: str
    tier: str
    region: str
    status: str
    purge_after: datetime | None = Field(
        None, description="A deleted tenant is purged after this (null otherwise)."
    )
    marks: list[str] = Field(
        default_factory=list,
        description="GitOps marks: pending-deletion (its file is gone), paused, observe.",
    )
    generation: int
    created_at: datetime
    updated_at: datetime


class TenantPage(BaseModel):
    """A page of tenants; `next` is the URL of the next page (null on the last)."""

    items: list[TenantSummary]
    next: str | None = Field(default=None, examples=["/v1/tenants?limit=100&cursor=tenant-100"])


class Accepted(BaseModel):
    """An accepted mutation: follow `operation_url` until the status is final."""

    model_config = _example(
        {
            "tenant_id": "tenant-100",
            "operation_id": "0b7c9d6e-2f1a-4c3b-9e8d-7a6b5c4d3e2f",
            "operation_url": "/v1/operations/0b7c9d6e-2f1a-4c3b-9e8d-7a6b5c4d3e2f",
        }
    )
    tenant_id: str
    operation_id: str
    operation_url: str


class Unchanged(BaseModel):
    """An update that changes nothing: the spec is what is applied already."""

    model_config = _example({"tenant_id": "tenant-100", "result": "unchanged"})
    tenant_id: str
    result: str


class Operation(BaseModel):
    """An operation and its steps (`running`, `succeeded`, `failed`, `waiting`, ...)."""

    model_config = _example(
        {
            "id": "0b7c9d6e-2f1a-4c3b-9e8d-7a6b5c4d3e2f",
            "tenant_id": "tenant-100",
            "kind": "onboard",
            "status": "succeeded",
            "message": "",
            "created_at": "2026-12-01T09:00:00Z",
            "finished_at": "2026-12-01T09:01:00Z",
            "steps": [{"name": "record", "status": "done", "attempts": 1}],
            "step_names": ["record", "database", "compute", "config", "network", "dns"],
            "exit_code": 0,
        }
    )
    id: str
    tenant_id: str
    kind: str
    status: str
    message: str
    created_at: datetime
    finished_at: datetime | None
    steps: list[dict[str, Any]]
    step_names: list[str] = Field(
        default_factory=list, description="Every step of the flow, in order."
    )
    exit_code: int = Field(0, description="What the CLI exits with for this outcome.")
    summary: str = Field(
        "",
        description="A finished tier change: rows moved and how long writes were frozen.",
        examples=[
            "standard -> enterprise, 2008 row(s) moved by logical replication; writes frozen 0.41 s"
        ],
    )


class PurgeCandidate(BaseModel):
    """A tenant `purge` looked at: what would go, or why it stays (`refusal`)."""

    tenant_id: str
    status: str
    purge_after: datetime | None
    export_checksum: str = Field(description="sha256 of its newest verified export, or empty.")
    hostnames: list[str]
    refusal: str = Field(description="Why purge leaves it; empty when it would go.")
    resuming: bool = Field(description="A purge of it is under way (it goes on).")
    unexported: bool = Field(description="No verified export: purge needs `without_export`.")


class PurgeCandidates(BaseModel):
    """What `tenantctl purge --dry-run` lists."""

    model_config = _example(
        {
            "items": [
                {
                    "tenant_id": "corner-cafe",
                    "status": "deleted",
                    "purge_after": "2026-12-08T09:00:00Z",
                    "export_checksum": "9f86d081884c7d659a2feaa0c55ad015...",
                    "hostnames": ["cornercafe.tenants.example.com"],
                    "refusal": "",
                    "resuming": False,
                    "unexported": False,
                }
            ]
        }
    )
    items: list[PurgeCandidate]


class RetiredCopy(BaseModel):
    """A source copy a tier change retired, and whether this call removed it."""

    tenant_id: str
    tier: str
    location: str
    due: datetime = Field(description="Its retention ends then.")
    removed: bool


class RetiredCopies(BaseModel):
    """The retired copies still on record before this call, each removed once due."""

    model_config = _example(
        {
            "items": [
                {
                    "tenant_id": "tenant-100",
                    "tier": "standard",
                    "location": "tenant_100 (standard, shared)",
                    "due": "2026-12-31T09:00:00Z",
                    "removed": True,
                }
            ]
        }
    )
    items: list[RetiredCopy]


class Diff(BaseModel):
    """Field-level differences between desired and live objects."""

    model_config = _example(
        {
            "tenant_id": "tenant-100",
            "in_sync": False,
            "differences": [
                {
                    "tenant": "tenant-100",
                    "step": "network",
                    "object": "NetworkPolicy/tenant-100/default-deny",
                    "field": "spec.policyTypes",
                    "want": "['Ingress', 'Egress']",
                    "have": "['Ingress']",
                }
            ],
        }
    )
    tenant_id: str
    in_sync: bool
    differences: list[dict[str, str]]


class Verification(BaseModel):
    """What `verify` found for each step."""

    model_config = _example({"tenant_id": "tenant-100", "healthy": True, "problems": []})
    tenant_id: str
    healthy: bool
    problems: list[str]


class AuditEntry(BaseModel):
    """One append-only audit entry."""

    id: int
    at: datetime
    actor: str
    tenant_id: str | None
    action: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    """Audit entries, newest first; `next` continues below the last one."""

    model_config = _example(
        {
            "items": [
                {
                    "id": 42,
                    "at": "2026-12-01T09:00:00Z",
                    "actor": "token:ci(tok_1a2b3c4d5e6f)",
                    "tenant_id": "tenant-100",
                    "action": "api.tenant.create",
                    "detail": {"outcome": "accepted", "request_id": "5f0c1d..."},
                }
            ],
            "next": "/v1/audit?limit=100&before=42",
        }
    )
    items: list[AuditEntry]
    next: str | None = None


class Routing(BaseModel):
    """Where a request goes: the tenant's routing context (never a credential)."""

    model_config = _example(
        {
            "tenant_id": "tenant-100",
            "tier": "enterprise",
            "status": "active",
            "region": "us-east-1",
            "database": {"module": "dedicated-db-postgres", "target": "tenant-100"},
            "features": {"ai_agents": True, "dynamic_pricing": False},
            "host": "acme.tenants.example.com",
        }
    )
    tenant_id: str
    tier: str
    status: str
    region: str
    database: dict[str, str]
    features: dict[str, bool]
    host: str | None = None
