"""Request budgets: one token-bucket row per rate-limited API (Cloudflare), shared by workers.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_budgets",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("tokens", sa.Float(precision=53), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("request_budgets")
