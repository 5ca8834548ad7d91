"""Initial schema: tenants, hosts, operations, steps, locks, append-only audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("spec", JSONB, nullable=False),
        sa.Column("spec_fingerprint", sa.Text, nullable=False),
        sa.Column("applied_fingerprint", sa.Text, nullable=False, server_default=""),
        sa.Column("generation", sa.Integer, nullable=False, server_default="1"),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("source_file", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "tenant_hosts",
        sa.Column("hostname", sa.Text, primary_key=True),
        sa.Column(
            "tenant_id", sa.Text, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.Text, nullable=False),
    )
    op.create_index("ix_tenant_hosts_tenant_id", "tenant_hosts", ["tenant_id"])
    op.create_table(
        "operations",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("spec_fingerprint", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("finished_at", _TS),
    )
    op.create_index("ix_operations_tenant_id", "operations", ["tenant_id"])
    op.create_table(
        "operation_steps",
        sa.Column(
            "operation_id",
            sa.Text,
            sa.ForeignKey("operations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False, server_default=""),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("skipped", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("next_attempt_at", _TS),
        sa.Column("started_at", _TS),
        sa.Column("finished_at", _TS),
        sa.Column("outputs", JSONB, nullable=False, server_default="{}"),
    )
    op.create_index("ix_operation_steps_tenant_id", "operation_steps", ["tenant_id"])
    op.create_table(
        "tenant_locks",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("tenant_id", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("detail", JSONB, nullable=False, server_default="{}"),
    )
    op.create_index("ix_audit_log_tenant_id", "audit_log", ["tenant_id"])
    # Append-only for every role, the owner included: a trigger refuses changes, and
    # PUBLIC loses the privileges outright.
    op.execute(
        """
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
            USING ERRCODE = 'insufficient_privilege';
        END $$;
        CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
          FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
        CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
          FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
        REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE audit_log; DROP FUNCTION audit_log_append_only();")
    for table in ("tenant_locks", "operation_steps", "operations", "tenant_hosts", "tenants"):
        op.drop_table(table)
