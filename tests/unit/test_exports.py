"""Pin each package's public names: changing `__all__` is a deliberate API change."""

from __future__ import annotations

import importlib

import pytest

EXPORTS = {
    "controlplane": [],
    "controlplane.models": ["PlatformConfig", "Tenant", "TenantId", "Tier"],
    "controlplane.errors": [
        "AuthError",
        "AwsError",
        "CloudflareError",
        "ConfigError",
        "ConflictError",
        "ControlPlaneError",
        "DriverError",
        "ForbiddenError",
        "KubernetesError",
        "NotFoundError",
        "PostgresError",
        "RolledBackError",
        "SourceLocation",
        "StepFailedError",
        "TerraformError",
    ],
    "controlplane.engine.steps": ["Change", "Step", "StepContext", "StepResult", "fingerprint_of"],
    "controlplane.engine.stores": ["LockManager", "OperationStore", "TenantRegistry"],
    "controlplane.models.operations": [
        "UNFINISHED",
        "AuditEntry",
        "Lease",
        "OperationRecord",
        "OperationStatus",
        "StepName",
        "StepRecord",
        "StepStatus",
    ],
    "controlplane.engine.running": ["RunResult", "Runner", "StepEvent", "utc_now"],
    "controlplane.engine.operating": ["Operator", "Outcome", "Request"],
    "controlplane.flows": ["FLOWS", "Dependencies", "steps_for"],
    "controlplane.testing": ["FakeClock", "MemoryStore", "run_operation"],
    "controlplane.models.kubernetes": ["FieldDifference", "ObjectChange", "Scope"],
    "controlplane.service": [
        "FAULT_ENV",
        "FAULT_IN_STEP_ENV",
        "ControlPlaneError",
        "Session",
        "StepEvent",
        "crd_source",
        "fleets",
        "inputs",
        "lifecycle",
        "listing",
        "metrics",
        "offboarding",
        "open_session",
        "operations",
        "planning",
        "queries",
        "queueing",
        "reconciling",
        "rendering",
        "resolving",
        "sessions",
        "submitting",
        "tokens",
        "upgrading",
    ],
    "controlplane.service.upgrading": [
        "KIND",
        "Retired",
        "change_tier",
        "check_direction",
        "purge_retired",
    ],
}


@pytest.mark.parametrize(("module", "names"), EXPORTS.items())
def test_all_is_pinned_and_importable(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    assert sorted(imported.__all__) == sorted(names)
    for name in names:
        assert hasattr(imported, name)
