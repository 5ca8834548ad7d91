"""Per-tenant GitOps bookkeeping: reconcile paused, pending deletion, reconcile backoff.

A separate table (not columns on `tenants`) because none of it is the tenant's spec or
status: it is what the reconciler and `apply -f DIR` remember between runs, so a restarted
reconciler respects a backoff and a paused tenant stays paused.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenant_reconcile",
        sa.Column(
            "tenant_id",
            sa.Text,
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("paused", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("paused_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("pending_deletion_since", _TS),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _TS),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_table("tenant_reconcile")
