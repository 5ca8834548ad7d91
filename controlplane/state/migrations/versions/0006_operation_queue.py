"""The operation queue: procrastinate's schema, in the state store beside the operations.

Applied by this migration path (one migrator at a time under the advisory lock of
`state.database.migrate`) rather than by each worker at start, so any number of worker
processes can start at once and none needs DDL rights. The schema is the one of the
procrastinate version pinned in pyproject.toml; upgrading procrastinate across a schema
change is a new migration that runs its migration scripts.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op
from procrastinate import schema

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The driver runs the script as is: no bind-parameter parsing of its `%` and `:`.
    op.get_bind().exec_driver_sql(schema.SchemaManager.get_schema().replace("%", "%%"))


def downgrade() -> None:
    # Tables first (their triggers go with them), then procrastinate's functions and types.
    op.execute(
        "DROP TABLE procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs, "
        "procrastinate_workers CASCADE"
    )
    op.execute(
        """
        DO $$ DECLARE f regprocedure; BEGIN
          FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE proname LIKE 'procrastinate%' LOOP
            EXECUTE 'DROP FUNCTION ' || f;
          END LOOP;
        END $$
        """
    )
    op.execute(
        "DROP TYPE procrastinate_job_to_defer_v1, procrastinate_job_status, "
        "procrastinate_job_event_type"
    )
