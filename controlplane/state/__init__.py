"""The state store: SQLAlchemy on Postgres (embedded or external) with Alembic migrations."""

__all__: list[str] = []
