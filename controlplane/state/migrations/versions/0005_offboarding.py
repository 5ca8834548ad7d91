"""Offboarding: a deleted tenant's purge date, and the verified exports taken of tenants.

`tenants.purge_after` is set when `delete` marks a tenant `deleted` (now + its
`lifecycle.retention_days`) and cleared by `restore`; `purge` removes the tenants past
it. `tenant_exports` keeps one row per export (its id is the operation that took it):
where it is, the sha256 of its dump, and when it was read back and verified. `purge`
refuses a tenant without a verified one unless told otherwise. The rows outlive the
tenant: they are what the purge receipt points at.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("tenants", sa.Column("purge_after", _TS))
    op.create_table(
        "tenant_exports",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("checksum", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("verified_at", _TS),
    )
    op.create_index("ix_tenant_exports_tenant_id", "tenant_exports", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_tenant_exports_tenant_id", table_name="tenant_exports")
    op.drop_table("tenant_exports")
    op.drop_column("tenants", "purge_after")
