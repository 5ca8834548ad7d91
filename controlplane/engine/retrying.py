"""Backoff for transient errors: exponential with full jitter, capped, Retry-After aware."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a step gets and how long to wait between them."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        Full jitter spreads retries of many tenants apart; a server's Retry-After is a
        floor, never shortened.
        """
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        wait = self.rng.uniform(0, ceiling)
        return max(wait, retry_after) if retry_after is not None else wait
