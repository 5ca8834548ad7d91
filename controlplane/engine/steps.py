"""What a step is: the unit the engine records, retries and resumes.

A step is a small reconciler for one external resource or concern. The engine owns
ordering, recording and retry; a step only knows how to read and converge its thing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from controlplane.models.operations import StepName
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant

__all__ = [
    "Change",
    "Step",
    "StepContext",
    "StepResult",
    "fingerprint_of",
]


@dataclass(frozen=True)
class StepContext:
    """Everything a step may read: the tenant, the platform, earlier steps' outputs."""

    tenant: Tenant
    platform: PlatformConfig
    operation_id: str
    outputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    source_file: str = ""

    def with_outputs(self, outputs: Mapping[str, Mapping[str, str]]) -> StepContext:
        """Copy of this context that sees the given earlier-step outputs."""
        return replace(self, outputs=outputs)

    def for_operation(self, operation_id: str) -> StepContext:
        """Copy of this context inside the given operation."""
        return replace(self, operation_id=operation_id)


@dataclass(frozen=True)
class Change:
    """One difference a step would make: `create`, `update`, `delete` or `noop`."""

    action: str
    target: str
    detail: str = ""


@dataclass(frozen=True)
class StepResult:
    """Outcome of `apply`: outputs later steps may read (never secrets)."""

    outputs: Mapping[str, str] = field(default_factory=dict)


class Step(Protocol):
    """The contract every step satisfies; `apply` must be safe to run twice."""

    @property
    def name(self) -> StepName:
        """Stable key of the step in the state store (renaming one is a migration)."""
        ...

    def fingerprint(self, ctx: StepContext) -> str:
        """Hash of this step's desired input; unchanged + verified means skip."""
        ...

    def plan(self, ctx: StepContext) -> list[Change]:
        """What `apply` would change, without changing anything."""
        ...

    def apply(self, ctx: StepContext) -> StepResult:
        """Create or adopt, converge, and return outputs."""
        ...

    def verify(self, ctx: StepContext) -> list[str]:
        """Read the real thing back; return problems (empty when healthy)."""
        ...

    def destroy(self, ctx: StepContext) -> None:
        """Remove what `apply` made; safe when already gone."""
        ...


def fingerprint_of(*parts: object) -> str:
    """Stable sha256 of JSON-serialisable parts (sorted keys, no whitespace)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
