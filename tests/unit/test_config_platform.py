"""platform.yaml rules: domain names, region ids and partial tier overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.config import loading
from controlplane.errors import ConfigError
from controlplane.models.platform import Tier

REFUSED = [
    (
        "base domain with spaces and punctuation",
        'base_domain: "Not A Domain!"',
        ("platform.base_domain", 2, "'Not A Domain!' is not a valid domain name"),
    ),
    (
        "base domain of one label",
        "base_domain: localhost",
        ("platform.base_domain", 2, "'localhost' is not a valid domain name"),
    ),
    (
        "ingress target with an empty label",
        "ingress_target: ingress..example.com",
        ("platform.ingress_target", 2, "'ingress..example.com' is not a valid domain name"),
    ),
    (
        "ingress target with a numeric top-level label",
        "ingress_target: 10.0.0.1",
        ("platform.ingress_target", 2, "'10.0.0.1' is not a valid domain name"),
    ),
    (
        "region with a typo in the direction",
        "regions: [us-east-1, us-esat-1]",
        ("platform.regions[1]", 2, "'us-esat-1' is not a region id"),
    ),
    (
        "region in capitals",
        "regions:\n    - US-EAST-1",
        ("platform.regions[0]", 3, "'US-EAST-1' is not a region id"),
    ),
    (
        "region without its number",
        "regions: [eu-west]",
        ("platform.regions[0]", 2, "'eu-west' is not a region id"),
    ),
    (
        "tier override of the wrong type shows the value",
        "tiers:\n    standard:\n      max_pods: lots",
        ("platform.tiers.standard.max_pods", 4, "(got 'lots')"),
    ),
    (
        "unknown tier is named once, at its key",
        "tiers:\n    gold: {max_cpu: '1'}",
        (
            "platform.tiers.gold",
            3,
            "'gold' is not a tier: use one of standard, enterprise, premium",
        ),
    ),
    (
        "regions not a list shows the value",
        "regions: 5",
        ("platform.regions", 2, "Input should be a valid list (got 5)"),
    ),
]


def _platform_file(folder: Path, body: str) -> Path:
    path = folder / "platform.yaml"
    path.write_text("platform:\n  " + body + "\n")
    return path


@pytest.mark.parametrize(("reason", "body", "want"), REFUSED, ids=[c[0] for c in REFUSED])
def test_bad_platform_file_names_file_line_and_field(
    tmp_path: Path, reason: str, body: str, want: tuple[str, int, str]
) -> None:
    field, line, fragment = want
    path = _platform_file(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        loading.load_platform(path)
    assert f"{path}:{line}: {field}: " in caught.value.message, reason
    assert fragment in caught.value.message, reason
    assert not any(loc.field.endswith(".") for loc, _ in caught.value.problems), reason
    assert len(caught.value.problems) == 1, caught.value.message
    assert caught.value.exit_code == 2


ACCEPTED = [
    (
        "upper case and the root dot are normalized",
        "base_domain: Tenants.Example.COM.\n  ingress_target: Ingress.Example.com",
        ("tenants.example.com", "ingress.example.com", ["us-east-1", "us-west-2", "eu-west-1"]),
    ),
    (
        "an internationalized name is stored as punycode",
        "base_domain: kunden.bücher.example",
        (
            "kunden.xn--bcher-kva.example",
            "ingress.tenants.example.com",
            ["us-east-1", "us-west-2", "eu-west-1"],
        ),
    ),
    (
        "AWS region ids of every shape",
        "regions: [us-east-1, ap-southeast-2, us-gov-west-1, cn-northwest-1, il-central-1]",
        (
            "tenants.example.com",
            "ingress.tenants.example.com",
            ["us-east-1", "ap-southeast-2", "us-gov-west-1", "cn-northwest-1", "il-central-1"],
        ),
    ),
]


@pytest.mark.parametrize(("reason", "body", "want"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_good_platform_values_are_normalized(
    tmp_path: Path, reason: str, body: str, want: tuple[str, str, list[str]]
) -> None:
    platform = loading.load_platform(_platform_file(tmp_path, body))
    assert (platform.base_domain, platform.ingress_target, platform.regions) == want, reason


def test_one_tier_field_overrides_without_repeating_the_profile(tmp_path: Path) -> None:
    body = "tiers:\n    standard:\n      max_cpu: '10'\n      database: {connection_limit: 25}"
    platform = loading.load_platform(_platform_file(tmp_path, body))
    standard = platform.tiers[Tier.STANDARD]
    assert (standard.max_cpu, standard.database.connection_limit) == ("10", 25)
    # Everything not named keeps the built-in profile.
    assert (standard.max_memory, standard.max_pods, standard.quota.pods) == ("16Gi", 50, 50)
    assert (standard.database.statement_timeout, standard.priority_class) == (
        "30s",
        "tenant-standard",
    )
    assert platform.tiers[Tier.PREMIUM].max_cpu == "128"
