"""Crash-test failpoints: make this process `kill -9` itself at a chosen moment.

Both are read from the environment and do nothing when unset:

- `TENANTCTL_FAULT_KILL_AFTER_STEP=<step>`: right after the step's record is written
  (a crash between two steps).
- `TENANTCTL_FAULT_KILL_IN_STEP=<step>`: right after the step's `apply` returns and before
  its record says so (the side effect happened, the record still says `running`), the
  window a re-run must converge from without duplicating anything.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import NoReturn

from controlplane.engine.running import StepEvent
from controlplane.engine.steps import Change, Step, StepContext, StepResult
from controlplane.models.operations import StepName

__all__ = ["FAULT_ENV", "FAULT_IN_STEP_ENV", "after_event", "arm"]

FAULT_ENV = "TENANTCTL_FAULT_KILL_AFTER_STEP"
FAULT_IN_STEP_ENV = "TENANTCTL_FAULT_KILL_IN_STEP"


def after_event(event: StepEvent) -> None:
    """Kill the process if `event` records the step named by FAULT_ENV as done."""
    if event.status == "done" and os.environ.get(FAULT_ENV) == event.step:
        _kill()


def arm(steps: list[Step]) -> list[Step]:
    """`steps`, with the one named by FAULT_IN_STEP_ENV killing the process after apply."""
    target = os.environ.get(FAULT_IN_STEP_ENV)
    if not target:
        return steps
    return [_KilledAfterApply(step) if step.name == target else step for step in steps]


def _kill() -> NoReturn:
    os.kill(os.getpid(), signal.SIGKILL)
    raise SystemExit(137)  # not reached: SIGKILL cannot be caught


@dataclass(frozen=True)
class _KilledAfterApply:
    step: Step

    @property
    def name(self) -> StepName:
        return self.step.name

    def fingerprint(self, ctx: StepContext) -> str:
        return self.step.fingerprint(ctx)

    def plan(self, ctx: StepContext) -> list[Change]:
        return self.step.plan(ctx)

    def apply(self, ctx: StepContext) -> StepResult:
        self.step.apply(ctx)
        _kill()

    def verify(self, ctx: StepContext) -> list[str]:
        return self.step.verify(ctx)

    def destroy(self, ctx: StepContext) -> None:
        self.step.destroy(ctx)
