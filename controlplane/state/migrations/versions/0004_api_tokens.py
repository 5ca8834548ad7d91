"""API tokens, and a NOTIFY on every tenant or hostname change for the resolver index.

Every API replica keeps an in-memory host index and LISTENs on `tenantctl_tenants`; a
trigger on `tenants` and `tenant_hosts` sends the changed tenant's id (`*` after a
TRUNCATE: reload everything). NOTIFY is delivered on commit, so a replica never sees a
change that was rolled back.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)

_NOTIFY = """
CREATE FUNCTION tenantctl_notify_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  changed jsonb;
BEGIN
  IF TG_LEVEL = 'STATEMENT' THEN
    PERFORM pg_notify('tenantctl_tenants', '*');
    RETURN NULL;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    changed := to_jsonb(OLD);
    PERFORM pg_notify('tenantctl_tenants', COALESCE(changed->>'tenant_id', changed->>'id'));
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    changed := to_jsonb(NEW);
    PERFORM pg_notify('tenantctl_tenants', COALESCE(changed->>'tenant_id', changed->>'id'));
  END IF;
  RETURN NULL;
END $$;
"""
_TRIGGERS = """
CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE ON {table}
  FOR EACH ROW EXECUTE FUNCTION tenantctl_notify_tenant();
CREATE TRIGGER {table}_notify_truncate AFTER TRUNCATE ON {table}
  FOR EACH STATEMENT EXECUTE FUNCTION tenantctl_notify_tenant();
"""
_TABLES = ("tenants", "tenant_hosts")


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("role", sa.Text),
        sa.Column("tenant_id", sa.Text),
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS),
        sa.CheckConstraint("kind IN ('platform', 'tenant')", name="api_tokens_kind"),
        sa.CheckConstraint(
            "(kind = 'platform' AND role IN ('admin', 'operator', 'viewer') AND tenant_id IS NULL)"
            " OR (kind = 'tenant' AND role IS NULL AND tenant_id IS NOT NULL)",
            name="api_tokens_scope",
        ),
    )
    op.create_index("ix_api_tokens_tenant_id", "api_tokens", ["tenant_id"])
    op.execute(_NOTIFY)
    for table in _TABLES:
        op.execute(_TRIGGERS.format(table=table))


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TRIGGER {table}_notify ON {table}")
        op.execute(f"DROP TRIGGER {table}_notify_truncate ON {table}")
    op.execute("DROP FUNCTION tenantctl_notify_tenant()")
    op.drop_table("api_tokens")
