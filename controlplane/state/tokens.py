"""API tokens in the state store: only each token's sha256 is kept, never the token.

A token is looked up by its hash alone (the tokens are 256-bit random, so a plain
sha256 suffices: there is nothing to brute-force), and a row that is revoked or past
its expiry never authenticates, whatever its hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from controlplane.errors import NotFoundError
from controlplane.state.lookups import connection
from controlplane.state.tables import api_tokens

__all__ = ["TOKENS_CHANNEL", "TokenRow", "find", "insert", "list_all", "revoke"]

TOKENS_CHANNEL = "tenantctl_tokens"  # listened to by `state.listening`


@dataclass(frozen=True)
class TokenRow:
    """One stored token (its hash stays in the table)."""

    id: str
    name: str
    kind: str
    role: str | None
    tenant_id: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


def _row(found: sa.RowMapping) -> TokenRow:
    return TokenRow(
        id=found["id"],
        name=found["name"],
        kind=found["kind"],
        role=found["role"],
        tenant_id=found["tenant_id"],
        created_by=found["created_by"],
        created_at=found["created_at"],
        expires_at=found["expires_at"],
        revoked_at=found["revoked_at"],
    )


def insert(engine: sa.Engine, row: TokenRow, token_hash: str) -> None:
    """Store a new token under its hash."""
    values = {**row.__dict__, "token_hash": token_hash}
    with connection(engine, write=True) as conn:
        conn.execute(api_tokens.insert().values(**values))


def find(engine: sa.Engine, token_hash: str) -> TokenRow | None:
    """The token with this hash, revoked or expired ones included (the caller decides)."""
    query = sa.select(api_tokens).where(api_tokens.c.token_hash == token_hash)
    with connection(engine) as conn:
        found = conn.execute(query).mappings().first()
    return None if found is None else _row(found)


def list_all(engine: sa.Engine) -> list[TokenRow]:
    """Every token, newest first (revoked and expired ones too: they are history)."""
    query = sa.select(api_tokens).order_by(api_tokens.c.created_at.desc(), api_tokens.c.id)
    with connection(engine) as conn:
        return [_row(r) for r in conn.execute(query).mappings().all()]


def revoke(engine: sa.Engine, token_id: str) -> TokenRow:
    """Mark a token revoked (idempotent: an earlier revocation time is kept).

    Raises:
        NotFoundError: no token has this id.
    """
    now = datetime.now(UTC)
    stmt = (
        api_tokens.update()
        .where(api_tokens.c.id == token_id)
        .values(revoked_at=sa.func.coalesce(api_tokens.c.revoked_at, now))
        .returning(*[c for c in api_tokens.c if c.name != "token_hash"])
    )
    with connection(engine, write=True) as conn:
        found = conn.execute(stmt).mappings().first()
        # Every API replica caches tokens it has seen: tell them all, on commit.
        conn.execute(sa.select(sa.func.pg_notify(TOKENS_CHANNEL, token_id)))
    if found is None:
        msg = f"no token with id '{token_id}' — list them with `tenantctl token list`"
        raise NotFoundError(msg)
    return _row(found)
