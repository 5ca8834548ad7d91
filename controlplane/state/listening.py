"""LISTEN for changes other replicas must see: tenants (and their hostnames) and tokens.

The trigger of migration 0004 NOTIFYs `tenantctl_tenants` with the changed tenant's id
(`*` after a TRUNCATE); `state.tokens.revoke` NOTIFYs `tenantctl_tokens` with the
revoked token's id. Each API replica runs one listener on its own connection. After
every (re)connect the caller is told to reload everything, because changes made while
it was disconnected were not delivered to it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
import sqlalchemy as sa

from controlplane.errors import PostgresError
from controlplane.state import tokens

__all__ = ["CHANNEL", "EVERYTHING", "TOKENS", "listen"]

log = logging.getLogger(__name__)

CHANNEL = "tenantctl_tenants"
TOKENS = tokens.TOKENS_CHANNEL
EVERYTHING = "*"
_RECONNECT_PAUSE = 1.0


def listen(
    engine: sa.Engine,
    on_change: Callable[[str, str], None],
    *,
    on_connect: Callable[[], None],
    stop: threading.Event,
    poll: float = 0.25,
) -> None:
    """Call `on_change(channel, payload)` per notification until `stop`; reconnect on outages.

    `on_connect` runs after each LISTEN took effect, so no change falls between a reload
    and the first notification. A failure of either callback to read the store counts
    as an outage: reconnect, and reload everything.
    """
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    while not stop.is_set():
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                conn.execute(f"LISTEN {TOKENS}")
                on_connect()
                _deliver(conn, on_change, stop, poll)
        except (psycopg.OperationalError, PostgresError) as exc:
            # Whatever was missed meanwhile is reloaded by `on_connect` after reconnecting.
            shown = engine.url.render_as_string(hide_password=True)
            log.warning("tenant change listener lost %s: %s; reconnecting", shown, exc)
            stop.wait(_RECONNECT_PAUSE)


def _deliver(
    conn: psycopg.Connection[tuple[object, ...]],
    on_change: Callable[[str, str], None],
    stop: threading.Event,
    poll: float,
) -> None:
    while not stop.is_set():
        for note in conn.notifies(timeout=poll):
            on_change(note.channel, note.payload)
