"""Records of operations and steps: the small fixed shape the engine persists.

Data only; the engine decides transitions and the state package stores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import NewType

__all__ = [
    "UNFINISHED",
    "AuditEntry",
    "Lease",
    "OperationRecord",
    "OperationStatus",
    "StepName",
    "StepRecord",
    "StepStatus",
]

StepName = NewType("StepName", str)


class StepStatus(StrEnum):
    """Lifecycle of a step record: pending → running → done | failed | waiting_retry."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    WAITING_RETRY = "waiting_retry"


class OperationStatus(StrEnum):
    """Lifecycle of an operation: [queued →] running → succeeded | failed | waiting | interrupted.

    `queued` (recorded for a queue worker, `apply --async`), `waiting` (a step waits for
    its next attempt) and `interrupted` (SIGINT) hold no lease: the next run of the same
    operation resumes them. `superseded`: a newer spec replaced the operation before it
    finished. `rolled_back`: a step undid it (a tier change whose verification failed);
    final, like `succeeded`.
    """

    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    INTERRUPTED = "interrupted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    ROLLED_BACK = "rolled_back"


# Operations a new run of the same kind and spec resumes instead of starting afresh.
UNFINISHED = (
    OperationStatus.QUEUED,
    OperationStatus.RUNNING,
    OperationStatus.WAITING,
    OperationStatus.INTERRUPTED,
    OperationStatus.FAILED,
)


@dataclass(frozen=True)
class AuditEntry:
    """One append-only audit record; written in the same transaction as what it reports."""

    action: str
    tenant_id: str | None
    detail: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Lease:
    """A held per-tenant lock; `token` fences writes of a holder that lost it."""

    tenant_id: str
    holder: str
    token: int
    expires_at: datetime


@dataclass(frozen=True)
class OperationRecord:
    """One run of a flow for one tenant."""

    id: str
    tenant_id: str
    kind: str
    status: str
    spec_fingerprint: str
    created_at: datetime
    message: str = ""
    # What any host needs to resume it: the platform config, the render folder, the file.
    context: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class StepRecord:
    """Progress of one step inside one operation."""

    operation_id: str
    name: StepName
    position: int
    status: StepStatus = StepStatus.PENDING
    fingerprint: str = ""
    attempts: int = 0
    last_error: str = ""
    next_attempt_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    skipped: bool = False
    outputs: Mapping[str, str] = field(default_factory=dict)

    def evolve(self, **changes: object) -> StepRecord:
        """Return a copy with `changes` applied."""
        return replace(self, **changes)  # type: ignore[arg-type]
