"""API tokens: platform tokens with a role, tenant tokens for one tenant; shown once.

A token is `tcp_` + 256 random bits; only its sha256 is stored (`state.tokens`). Roles
nest: a viewer reads, an operator also runs lifecycle operations, an admin also purges
and manages tokens. A tenant token authenticates only on the tenant surface
(`/v1/tenant/{id}/...`) of its own tenant; the two surfaces never accept each other's
tokens. Creating and revoking tokens is audited.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from controlplane.errors import (
    AuthError,
    ConfigError,
    ForbiddenError,
    SourceLocation,
)
from controlplane.service.sessions import Session
from controlplane.state import tokens as stored
from controlplane.state.store import Store
from controlplane.state.tokens import TokenRow

__all__ = [
    "MAX_TTL",
    "PLATFORM",
    "ROLES",
    "TENANT",
    "Forbidden",
    "Principal",
    "TokenCache",
    "TokenRow",
    "Unauthenticated",
    "acting",
    "audit_request",
    "authenticate",
    "cached",
    "create",
    "list_tokens",
    "revoke",
    "status_of",
]

PLATFORM = "platform"
TENANT = "tenant"
ROLES = ("viewer", "operator", "admin")  # each includes the ones before it
_PREFIX = "tcp_"
MAX_TTL = timedelta(days=366)  # the longest a token lives


# The API's names for the two refusals (the classes live in the one hierarchy).
Unauthenticated = AuthError
Forbidden = ForbiddenError


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the token's id, name, kind, and role or tenant."""

    token_id: str
    name: str
    kind: str
    role: str | None = None
    tenant_id: str | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return f"token:{self.name}({self.token_id})"

    def allows(self, role: str) -> bool:
        """True for a platform token whose role includes `role`."""
        return self.kind == PLATFORM and ROLES.index(self.role or "viewer") >= ROLES.index(role)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _scope_problem(
    role: str | None, tenant_id: str | None, ttl: timedelta
) -> tuple[str, str] | None:
    """(field, message) of what is wrong with a token request, or None."""
    if (role is None) == (tenant_id is None):
        return "role", "give either --role (platform token) or --tenant (tenant token)"
    if role is not None and role not in ROLES:
        return "role", f"unknown role '{role}' — one of {', '.join(ROLES)}"
    if not timedelta(0) < ttl <= MAX_TTL:
        return "expires", "the lifetime must be between 1 second and 366 days"
    return None


def create(  # noqa: PLR0913 - keyword-only options, all defaulted
    session: Session,
    name: str,
    *,
    role: str | None = None,
    tenant_id: str | None = None,
    ttl: timedelta = timedelta(days=30),
    note: Mapping[str, object] | None = None,
) -> tuple[str, TokenRow]:
    """Mint a token; returns (the token, shown only now, and its record).

    Exactly one of `role` (a platform token) or `tenant_id` (a tenant token) is given;
    `note` joins the audit entry (the API's request id).

    Raises:
        ConfigError: both or neither of role and tenant, an unknown role, a bad ttl.
        NotFoundError: the tenant is not recorded.
    """
    problem = _scope_problem(role, tenant_id, ttl)
    if problem is not None:
        raise ConfigError([(SourceLocation("arguments", None, problem[0]), problem[1])])
    if tenant_id is not None:
        session.store.get_tenant(tenant_id)
    token = _PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    row = TokenRow(
        id="tok_" + secrets.token_hex(6),
        name=name,
        kind=PLATFORM if role else TENANT,
        role=role,
        tenant_id=tenant_id,
        created_by=session.store.actor,
        created_at=now,
        expires_at=now + ttl,
        revoked_at=None,
    )
    stored.insert(session.store.engine, row, _hash(token))
    session.store.audit("token.created", tenant_id, {**_described(row), **(note or {})})
    return token, row


def _described(row: TokenRow) -> dict[str, object]:
    return {
        "token": row.id,
        "name": row.name,
        "kind": row.kind,
        "role": row.role,
        "expires_at": row.expires_at.isoformat(timespec="seconds"),
    }


def status_of(row: TokenRow, now: datetime | None = None) -> str:
    """`active`, `expired` or `revoked`."""
    if row.revoked_at is not None:
        return "revoked"
    return "expired" if row.expires_at <= (now or datetime.now(UTC)) else "active"


def list_tokens(session: Session) -> list[dict[str, Any]]:
    """Every token's record and status (never the token)."""
    return [
        {**row.__dict__, "status": status_of(row)} for row in stored.list_all(session.store.engine)
    ]


def revoke(session: Session, token_id: str, note: Mapping[str, object] | None = None) -> TokenRow:
    """Revoke a token; every API replica hears it by NOTIFY and refuses it from then on.

    Raises:
        NotFoundError: no token has this id.
    """
    row = stored.revoke(session.store.engine, token_id)
    session.store.audit("token.revoked", row.tenant_id, {**_described(row), **(note or {})})
    return row


def acting(session: Session, actor: str) -> Session:
    """`session` writing its records and audit entries as `actor` (an API caller)."""
    return dataclasses.replace(session, store=Store(session.store.engine, actor=actor))


@dataclass
class TokenCache:
    """Tokens this replica has seen, by hash, so a request costs no query.

    Expiry is checked on every use; a revocation reaches every replica by NOTIFY
    (`state.tokens.revoke`) and `forget` drops the token (all of them after the
    listener reconnects). Unknown tokens are never cached.
    """

    max_size: int = 10_000
    _rows: dict[str, TokenRow] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, token_hash: str) -> TokenRow | None:
        """The cached row of a token hash, if any."""
        with self._lock:
            return self._rows.get(token_hash)

    def put(self, token_hash: str, row: TokenRow) -> None:
        """Remember a token (the oldest goes when full)."""
        with self._lock:
            if len(self._rows) >= self.max_size:
                self._rows.pop(next(iter(self._rows)))
            self._rows[token_hash] = row

    def forget(self, token_id: str | None) -> None:
        """Drop token `token_id`, or every token when None."""
        with self._lock:
            if token_id is None:
                self._rows.clear()
                return
            for found in [h for h, row in self._rows.items() if row.id == token_id]:
                del self._rows[found]


def _lookup(session: Session, token: str, cache: TokenCache | None) -> TokenRow | None:
    token_hash = _hash(token)
    row = cache.get(token_hash) if cache else None
    if row is None:
        row = stored.find(session.store.engine, token_hash)
        if row is not None and cache is not None:
            cache.put(token_hash, row)
    return row


def cached(cache: TokenCache, token: str | None) -> Principal | None:
    """The principal of a cached, active token; None means: ask `authenticate` (no IO)."""
    row = cache.get(_hash(token)) if token else None
    if row is None or status_of(row) != "active":
        return None
    return Principal(row.id, row.name, row.kind, row.role, row.tenant_id)


def authenticate(session: Session, token: str | None, cache: TokenCache | None = None) -> Principal:
    """The principal of a bearer token (`cache`: this replica's tokens seen so far).

    Raises:
        Unauthenticated: no token, an unknown one, or one expired or revoked.
    """
    if not token:
        msg = "no token — send `Authorization: Bearer <token>` (tenantctl token create)"
        raise Unauthenticated(msg)
    row = _lookup(session, token, cache) if token.startswith(_PREFIX) else None
    if row is None:
        msg = "unknown token — check it, or mint one with `tenantctl token create`"
        raise Unauthenticated(msg)
    state = status_of(row)
    if state != "active":
        msg = f"token {row.id} is {state} — mint a new one with `tenantctl token create`"
        raise Unauthenticated(msg)
    return Principal(row.id, row.name, row.kind, row.role, row.tenant_id)


def audit_request(
    session: Session,
    action: str,
    *,
    actor: str,
    tenant_id: str | None,
    detail: dict[str, object],
) -> None:
    """Append an audit entry on behalf of `actor` (a token, or `anonymous`)."""
    Store(session.store.engine, actor=actor).audit(action, tenant_id, detail)
