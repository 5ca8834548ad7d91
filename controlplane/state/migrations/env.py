"""Alembic environment: runs on the connection `state.database.migrate` hands over."""

from __future__ import annotations

from alembic import context

from controlplane.state.tables import metadata, ours

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, include_name=ours)
with context.begin_transaction():
    context.run_migrations()
