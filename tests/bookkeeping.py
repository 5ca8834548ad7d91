"""Checks of the state store's books after crashes: shared by the kill tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from controlplane.state.store import Store


def check_books(store: Store, ids: Sequence[str], status: str) -> None:
    """Every tenant recorded is one of `ids` and in `status`, its newest operation
    succeeded, no step is left running or pending, each step done (not skipped) has
    exactly one `step.applied` entry, and the audit log keeps the fencing order."""
    assert {t["id"]: t["status"] for t in store.list_tenants()} == dict.fromkeys(ids, status)
    with store.engine.connect() as conn:
        newest = conn.exec_driver_sql(
            "SELECT DISTINCT ON (tenant_id) tenant_id, status FROM operations "
            "ORDER BY tenant_id, created_at DESC"
        ).all()
        left = conn.exec_driver_sql(
            "SELECT count(*) FROM operations WHERE status IN ('running', 'pending', 'waiting')"
        ).scalar()
        steps_left = conn.exec_driver_sql(
            "SELECT count(*) FROM operation_steps WHERE status IN ('running', 'pending')"
        ).scalar()
        done = conn.exec_driver_sql(
            "SELECT operation_id, name FROM operation_steps WHERE status = 'done' AND NOT skipped"
        ).all()
    assert dict(newest) == dict.fromkeys(ids, "succeeded")
    assert (left, steps_left) == (0, 0)
    entries = list(reversed(store.audit_entries(limit=100_000)))
    applied = Counter(
        (e["detail"]["operation"], e["detail"]["step"])
        for e in entries
        if e["action"] == "step.applied"
    )
    assert applied == Counter({(op, name): 1 for op, name in done})
    check_fencing(entries)


def check_fencing(entries: list[dict[str, Any]]) -> None:
    """A run's entries about an operation end with its outcome; only a new run (which
    writes `operation.resumed` first) may write more. A fenced-out holder writing late
    would break that order. Nothing at all follows `operation.succeeded`."""
    succeeded: set[str] = set()
    paused: set[str] = set()  # ended failed, waiting or interrupted: resumable
    for entry in entries:
        operation, action = entry["detail"].get("operation"), entry["action"]
        if not operation:
            continue
        if operation in succeeded or (operation in paused and action != "operation.resumed"):
            pytest.fail(f"entry after the end of operation {operation}: {entry}")
        paused.discard(operation)
        if action == "operation.succeeded":
            succeeded.add(operation)
        elif action in ("operation.failed", "operation.waiting", "operation.interrupted"):
            paused.add(operation)
