"""Operations record what any host needs to resume them (platform config, render folder).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("operations", sa.Column("context", JSONB, nullable=False, server_default="{}"))
    # The bulk reads of `plan`/`apply --reconcile`: newest done record per tenant and step.
    op.create_index(
        "ix_operation_steps_done",
        "operation_steps",
        ["tenant_id", "name", "finished_at"],
        postgresql_where=sa.text("status = 'done'"),
    )


def downgrade() -> None:
    op.drop_index("ix_operation_steps_done", table_name="operation_steps")
    op.drop_column("operations", "context")
