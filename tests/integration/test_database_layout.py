"""Which module, target and inputs each tier gets (pure; table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.steps import database

AWS = {
    "databases": {
        "dedicated_backend": "aws",
        "vpc_id": "vpc-1",
        "subnet_ids": ["subnet-a", "subnet-b"],
        "availability_zones": ["us-east-1a", "us-east-1b"],
        "custom_key_store_id": "cks-123",
    }
}


def tenant(tier: str, tenant_id: str = "shop-1") -> Tenant:
    return Tenant.model_validate(
        {"id": tenant_id, "name": "Shop", "tier": tier, "region": "us-west-2"}
    )


CASES: list[dict[str, Any]] = [
    {
        "reason": "standard: schema in the shared Postgres with the tier's limits",
        "tier": "standard",
        "platform": {},
        "want": ("shared-schema", "shared"),
        "want_inputs": {
            "schema_name": "tenant_shop_1",
            "connection_limit": 20,
            "statement_timeout": "30s",
        },
    },
    {
        "reason": "enterprise, self-hosted: dedicated database with deletion protection",
        "tier": "enterprise",
        "platform": {},
        "want": ("dedicated-db-postgres", "dedicated"),
        "want_inputs": {"database_name": "tenant_shop_1", "app_role": "tenant_shop_1_app"},
    },
    {
        "reason": "enterprise on AWS: platform VPC and subnets, no HSM key",
        "tier": "enterprise",
        "platform": AWS,
        "want": ("dedicated-db-aws", "aws"),
        "want_inputs": {
            "tier": "enterprise",
            "vpc_id": "vpc-1",
            "subnet_ids": ["subnet-a", "subnet-b"],
        },
    },
    {
        "reason": "premium on AWS: own VPC across zones, key in the custom key store",
        "tier": "premium",
        "platform": AWS,
        "want": ("dedicated-db-aws", "aws"),
        "want_inputs": {
            "tier": "premium",
            "custom_key_store_id": "cks-123",
            "availability_zones": ["us-east-1a", "us-east-1b"],
        },
    },
]


@pytest.mark.parametrize("case", CASES, ids=[c["reason"] for c in CASES])
def test_unit_for(case: dict[str, Any]) -> None:
    unit = database.unit_for(tenant(case["tier"]), PlatformConfig.model_validate(case["platform"]))
    assert (unit.module, unit.target) == case["want"], case["reason"]
    assert unit.region == "us-west-2"
    for key, value in case["want_inputs"].items():
        assert unit.inputs[key] == value, (case["reason"], key)


def test_premium_on_aws_never_gets_the_platform_vpc() -> None:
    unit = database.unit_for(tenant("premium"), PlatformConfig.model_validate(AWS))
    assert "vpc_id" not in unit.inputs
    assert "subnet_ids" not in unit.inputs


def test_names_fit_postgres_identifiers_for_the_longest_id() -> None:
    names = database.names(tenant("standard", "a" * 40))
    assert max(len(n) for n in names.values()) <= 63
