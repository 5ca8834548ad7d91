"""The Kubernetes modules' public names are pinned (fold into test_exports.py when convenient)."""

from __future__ import annotations

import importlib

import pytest

EXPORTS = {
    "controlplane.models.kubernetes": ["FieldDifference", "ObjectChange", "Scope"],
    "controlplane.models.quantities": ["canonical", "parse"],
    "controlplane.drivers.kubernetes": [
        "FIELD_MANAGER",
        "GUARDED_KINDS",
        "KINDS",
        "KubernetesClusters",
        "RenderedClusters",
        "connect",
        "rbac_rules",
        "translated",
    ],
    "controlplane.drivers.tenant_resources": [
        "TenantEvent",
        "TenantObjects",
        "rbac_rules",
    ],
}


@pytest.mark.parametrize(("module", "names"), sorted(EXPORTS.items()))
def test_public_names_are_pinned(module: str, names: list[str]) -> None:
    exported = importlib.import_module(module).__all__
    assert sorted(exported) == sorted(names)
