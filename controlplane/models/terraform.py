"""What the database step and the Terraform driver say to each other (data only).

`TerraformUnit` is what a step asks the driver to converge; `TerraformEvent` is what the
driver reports while terraform runs (one per line of its `-json` UI output), so a long
apply (an RDS instance takes 20 minutes) shows progress instead of silence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["TerraformEvent", "TerraformUnit"]


@dataclass(frozen=True)
class TerraformUnit:
    """One tenant's use of one module: module inputs (never secrets) and where it runs."""

    tenant_id: str
    module: str
    target: str
    region: str
    inputs: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class TerraformEvent:
    """One machine-readable UI message of a terraform run, in the order terraform sent it.

    `kind` is terraform's message type (`apply_start`, `apply_progress`, `apply_complete`,
    `apply_errored`, `provision_start`, `planned_change`, `change_summary`, `diagnostic`,
    `outputs`, ...), `message` its human-readable `@message`, `resource` the address the
    message is about (empty when none) and `level` its `@level` (`info`, `warn`, `error`).
    """

    tenant_id: str
    module: str
    command: str
    kind: str
    message: str
    resource: str = ""
    level: str = "info"
