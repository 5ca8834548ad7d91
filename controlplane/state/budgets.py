"""Request budgets shared by every worker process: a token bucket in one Postgres row.

Cloudflare allows about 1,200 API requests per 5 minutes per user, for all of that
user's tokens together. Workers on many hosts onboard tenants at once, so the allowance
must be counted where they all meet: the state store. Each request takes one token with
a single atomic `UPDATE ... RETURNING` (the row lock serialises concurrent takers; the
database clock refills it); a caller that finds the bucket empty sleeps until the next
token is due, then tries again, so bursts queue instead of failing.

The bucket holds at most a quarter of the allowance and refills with the rest spread over
the window, so no 5-minute window ever sees more than `limit` requests: burst + rate x
window = limit/4 + (3/4 x limit / window) x window = limit.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from controlplane.state import lookups

__all__ = ["PostgresRequestBudget", "available_now"]

log = logging.getLogger(__name__)

# The database clock, one for every host, unless the caller passes its own (tests).
_NOW = "COALESCE(CAST(:now AS timestamptz), clock_timestamp())"
_ENSURE = sa.text(
    "INSERT INTO request_budgets (name, tokens, updated_at) "  # noqa: S608
    f"VALUES (:name, :capacity, {_NOW}) ON CONFLICT (name) DO NOTHING"
)
# Tokens available now: what was left plus the refill since the last take, capped.
_AVAILABLE = (
    "LEAST(CAST(:capacity AS double precision), tokens + :rate * "
    f"GREATEST(0, EXTRACT(EPOCH FROM {_NOW} - updated_at)))"
)
# S608: the f-strings join constant fragments only; every value is a bound parameter.
_TAKE = sa.text(
    f"UPDATE request_budgets SET tokens = {_AVAILABLE} - 1, updated_at = {_NOW} "  # noqa: S608
    f"WHERE name = :name AND {_AVAILABLE} >= 1 RETURNING tokens"
)
_PEEK = sa.text(f"SELECT {_AVAILABLE} FROM request_budgets WHERE name = :name")  # noqa: S608
_DRAIN = sa.text(
    f"UPDATE request_budgets SET tokens = LEAST({_AVAILABLE}, 1 - :seconds * :rate), "  # noqa: S608
    f"updated_at = {_NOW} WHERE name = :name"
)


def _shape(limit: int, window: float) -> tuple[int, float]:
    """Capacity and refill rate (tokens per second) of a budget of `limit` per `window`."""
    capacity = max(1, limit // 4)
    return capacity, (limit - capacity) / window


def available_now(
    engine: sa.Engine, name: str, *, limit: int, window: float = 300.0
) -> float | None:
    """Tokens in budget `name` now (refilled since its last use); None if never used.

    Takes none and writes nothing (for /metrics).
    """
    capacity, rate = _shape(limit, window)
    params = {"name": name, "capacity": capacity, "rate": rate, "now": None}
    with lookups.connection(engine) as conn:  # an outage is a PostgresError, as elsewhere
        found = conn.execute(_PEEK, params).scalar()
    return None if found is None else float(found)


class PostgresRequestBudget:
    """Token bucket `name` in the state store; satisfies the drivers' `RequestBudget`."""

    def __init__(  # noqa: PLR0913 - keyword-only knobs, all defaulted
        self,
        engine: sa.Engine,
        name: str,
        *,
        limit: int = 1200,
        window: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = engine
        self.name = name
        self.capacity, self.rate = _shape(limit, window)
        self.sleep = sleep
        self._clock = clock
        self._fixed = {"name": name, "capacity": self.capacity, "rate": self.rate}
        with engine.begin() as conn:
            conn.execute(_ENSURE, self._params)

    @property
    def _params(self) -> dict[str, object]:
        return {**self._fixed, "now": self._clock() if self._clock else None}

    def try_acquire(self) -> float:
        """Take a token if one is there; return 0, or the seconds until one is due."""
        with self.engine.begin() as conn:
            if conn.execute(_TAKE, self._params).first() is not None:
                return 0.0
            available = conn.execute(_PEEK, self._params).scalar_one()
        return max(0.001, (1 - float(available)) / self.rate)

    def available(self) -> float:
        """Tokens in the bucket now (for status pages and tests); takes none."""
        with self.engine.begin() as conn:
            return float(conn.execute(_PEEK, self._params).scalar_one())

    def acquire(self) -> None:
        """Block until this caller may send one request."""
        while (wait := self.try_acquire()) > 0:
            log.debug("request budget %s empty; waiting %.2fs", self.name, wait)
            # Jitter keeps a crowd of waiters from waking in lockstep.
            self.sleep(wait * random.uniform(1.0, 1.2))  # noqa: S311 - not cryptographic

    def penalise(self, seconds: float) -> None:
        """The API said 429: empty the bucket so every caller waits `seconds`."""
        with self.engine.begin() as conn:
            conn.execute(_DRAIN, {**self._params, "seconds": seconds})
