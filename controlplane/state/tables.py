"""Tables of the state store. Alembic migrations create them; this mirrors the schema."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = [
    "api_tokens",
    "audit_log",
    "metadata",
    "operation_steps",
    "operations",
    "ours",
    "request_budgets",
    "tenant_exports",
    "tenant_hosts",
    "tenant_locks",
    "tenant_reconcile",
    "tenants",
]

metadata = MetaData()


def ours(name: str | None, _type: str, _parents: object) -> bool:
    """Alembic's `include_name`: the queue's tables are procrastinate's (migration 0006)."""
    return not (name or "").startswith("procrastinate_")


tenants = Table(
    "tenants",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("tier", Text, nullable=False),
    Column("region", Text, nullable=False),
    Column("spec", JSONB, nullable=False),
    Column("spec_fingerprint", Text, nullable=False),
    Column("applied_fingerprint", Text, nullable=False, server_default=""),
    Column("generation", Integer, nullable=False, server_default="1"),
    Column("status", Text, nullable=False),
    Column("source_file", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Set while the tenant is `deleted`: `purge` removes it after this moment.
    Column("purge_after", DateTime(timezone=True)),
)

tenant_hosts = Table(
    "tenant_hosts",
    metadata,
    Column("hostname", Text, primary_key=True),
    Column(
        "tenant_id", Text, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("kind", Text, nullable=False),
)

operations = Table(
    "operations",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False, index=True),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("spec_fingerprint", Text, nullable=False),
    Column("message", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("context", JSONB, nullable=False, server_default="{}"),
)

operation_steps = Table(
    "operation_steps",
    metadata,
    Column("operation_id", Text, ForeignKey("operations.id", ondelete="CASCADE"), primary_key=True),
    Column("name", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("fingerprint", Text, nullable=False, server_default=""),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("skipped", Boolean, nullable=False, server_default="false"),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("outputs", JSONB, nullable=False, server_default="{}"),
    # The bulk read of `plan`/`apply --reconcile`: newest done record per tenant and step.
    Index(
        "ix_operation_steps_done",
        "tenant_id",
        "name",
        "finished_at",
        postgresql_where=text("status = 'done'"),
    ),
)

tenant_locks = Table(
    "tenant_locks",
    metadata,
    Column("tenant_id", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("token", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

request_budgets = Table(
    "request_budgets",
    metadata,
    Column("name", Text, primary_key=True),
    Column("tokens", Float(precision=53), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("tenant_id", Text, index=True),
    Column("action", Text, nullable=False),
    Column("detail", JSONB, nullable=False, server_default="{}"),
)

# -- Exports (delete, export, purge) -----------------------------------------------------
# One row per export (id: the operation that took it); kept after the tenant is purged.
tenant_exports = Table(
    "tenant_exports",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False, index=True),
    Column("location", Text, nullable=False),
    Column("checksum", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("verified_at", DateTime(timezone=True)),
)

# -- API tokens (issue 11) --------------------------------------------------------------
# Platform tokens carry a role; tenant tokens a tenant. Only the sha256 of a token is kept.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("role", Text),
    Column("tenant_id", Text, index=True),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

# -- GitOps bookkeeping (issue 12) ------------------------------------------------------
# What `apply -f DIR` and the reconciler remember per tenant between runs.
tenant_reconcile = Table(
    "tenant_reconcile",
    metadata,
    Column("tenant_id", Text, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("paused", Boolean, nullable=False, server_default="false"),
    Column("paused_reason", Text, nullable=False, server_default=""),
    Column("pending_deletion_since", DateTime(timezone=True)),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("last_error", Text, nullable=False, server_default=""),
)
