"""Each validation rule: a bad file is refused with file, line and field named."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from controlplane.config import loading
from controlplane.errors import ConfigError
from controlplane.models.platform import PlatformConfig

PLATFORM = PlatformConfig()

GOOD = """\
tenant:
  id: acme
  name: Acme
  tier: enterprise
  region: us-east-1
  domains:
    subdomain: acme
    custom: [shop.acme.com]
  limits: {cpu: "8", memory: 16Gi, pods: 50}
  compliance: {pci_dss_level: 2, data_residency: [us-east-1, us-west-2]}
"""

CASES = [
    # (reason, replace old -> new, want field, want line, want message fragment)
    (
        "unknown key",
        ("  name: Acme\n", "  name: Acme\n  colour: red\n"),
        "tenant.colour",
        4,
        "unknown key",
    ),
    (
        "unknown nested key",
        ("  limits: {", "  limits: {gpu: 1, "),
        "tenant.limits.gpu",
        9,
        "unknown key",
    ),
    ("id not a DNS label", ("id: acme", "id: Acme_Corp"), "tenant.id", 2, "DNS label"),
    ("id too long", ("id: acme", "id: " + "a" * 41), "tenant.id", 2, "at most 40"),
    (
        "tier unknown",
        ("tier: enterprise", "tier: gold"),
        "tenant.tier",
        4,
        "standard, enterprise, premium",
    ),
    (
        "region not on platform",
        ("region: us-east-1", "region: ap-south-1"),
        "tenant.region",
        5,
        "not a platform region",
    ),
    (
        "region outside residency",
        ("data_residency: [us-east-1, us-west-2]", "data_residency: [us-west-2]"),
        "tenant.region",
        5,
        "outside compliance.data_residency",
    ),
    (
        "pci level 1 needs premium",
        ("pci_dss_level: 2", "pci_dss_level: 1"),
        "tenant.compliance.pci_dss_level",
        10,
        "requires tier premium",
    ),
    (
        "cpu above tier max",
        ('cpu: "8"', 'cpu: "64"'),
        "tenant.limits.cpu",
        9,
        "exceeds the enterprise tier maximum",
    ),
    (
        "memory above tier max",
        ("memory: 16Gi", "memory: 1Ti"),
        "tenant.limits.memory",
        9,
        "exceeds",
    ),
    ("pods above tier max", ("pods: 50", "pods: 5000"), "tenant.limits.pods", 9, "exceeds"),
    (
        "cpu not a quantity",
        ('cpu: "8"', 'cpu: "lots"'),
        "tenant.limits.cpu",
        9,
        "not a Kubernetes quantity",
    ),
    (
        "custom domain not an FQDN",
        ("custom: [shop.acme.com]", "custom: [shop_acme]"),
        "tenant.domains.custom[0]",
        8,
        "not a valid",
    ),
    (
        "custom domain under base domain",
        ("custom: [shop.acme.com]", "custom: [x.tenants.example.com]"),
        "tenant.domains.custom[0]",
        8,
        "under the platform's base domain",
    ),
    ("missing name", ("  name: Acme\n", ""), "tenant.name", 1, "required"),
    ("wrong type", ("name: Acme", "name: [1, 2]"), "tenant.name", 3, "string"),
]


@pytest.mark.parametrize(
    ("reason", "edit", "field", "line", "fragment"), CASES, ids=[c[0] for c in CASES]
)
def test_rule_names_file_line_and_field(
    reason: str, edit: tuple[str, str], field: str, line: int, fragment: str
) -> None:
    text = GOOD.replace(*edit)
    assert text != GOOD, reason
    with pytest.raises(ConfigError) as caught:
        loading.load_tenant_text(text, "tenants/acme.yaml", PLATFORM)
    matching = [m for loc, m in caught.value.problems if (loc.field, loc.line) == (field, line)]
    assert any(fragment in m for m in matching), caught.value.message
    assert f"tenants/acme.yaml:{line}: {field}" in caught.value.message
    assert caught.value.exit_code == 2


def test_good_file_loads() -> None:
    source = loading.load_tenant_text(GOOD, "acme.yaml", PLATFORM)
    assert source.tenant.id == "acme"
    assert source.tenant.subdomain == "acme"


def test_invalid_yaml_names_line() -> None:
    with pytest.raises(ConfigError) as caught:
        loading.load_tenant_text("tenant:\n  id: [unclosed\n  name: x\n", "bad.yaml", PLATFORM)
    assert caught.value.problems[0][0].line is not None
    assert "invalid YAML" in caught.value.message


def _write(folder: Path, name: str, body: str) -> None:
    (folder / name).write_text(textwrap.dedent(body))


CROSS = [
    ("duplicate id", ("b.yaml", "id: acme"), "tenant.id", "tenant id 'acme' is already claimed by"),
    (
        "duplicate subdomain",
        ("b.yaml", "subdomain: acme"),
        "tenant.domains.subdomain",
        "hostname 'acme.tenants.example.com'",
    ),
    (
        "duplicate custom domain",
        ("b.yaml", "custom: [shop.acme.com]"),
        "tenant.domains.custom[0]",
        "hostname 'shop.acme.com'",
    ),
]


@pytest.mark.parametrize(("reason", "clash", "field", "fragment"), CROSS, ids=[c[0] for c in CROSS])
def test_cross_file_collisions(
    tmp_path: Path, reason: str, clash: tuple[str, str], field: str, fragment: str
) -> None:
    _write(tmp_path, "a.yaml", GOOD)
    other = "tenant:\n  id: other\n  name: Other\n  tier: standard\n  region: us-east-1\n"
    key, value = clash[1].split(": ", 1)
    if key == "id":
        other = other.replace("id: other", f"id: {value}")
    elif key == "subdomain":
        other += f"  domains:\n    subdomain: {value}\n"
    else:
        other += f"  domains:\n    custom: {value}\n"
    _write(tmp_path, clash[0], other)
    with pytest.raises(ConfigError) as caught:
        loading.load_tenants([tmp_path], PLATFORM)
    [(loc, msg)] = [
        (loc, m) for loc, m in caught.value.problems if loc.field == field and fragment in m
    ]
    assert loc.file.endswith("b.yaml"), reason
    assert loc.line is not None and loc.line > 1
    assert fragment in msg and "a.yaml" in msg


def test_examples_are_valid() -> None:
    root = Path(__file__).resolve().parents[2] / "tenant-configs"
    platform = loading.load_platform(root / "platform.yaml")
    sources = loading.load_tenants([root], platform)
    tiers = sorted(s.tenant.tier.value for s in sources)
    assert tiers.count("standard") >= 2 and tiers.count("enterprise") >= 2 and "premium" in tiers
    assert any(s.tenant.domains.custom and s.tenant.compliance.data_residency for s in sources)


def test_platform_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text("platform:\n  base_domain: example.com\n  regions: 5\n")
    with pytest.raises(ConfigError) as caught:
        loading.load_platform(path)
    [(loc, _)] = caught.value.problems
    assert (loc.field, loc.line) == ("platform.regions", 3)


def test_alias_bomb_is_refused_quickly() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    text = "tenant:\n  id: bomb\n  name: x\n  tier: standard\n  region: us-east-1\n  features:\n"
    text += "".join(f"    {line}\n" for line in levels)
    with pytest.raises(ConfigError, match="aliases expand to more than"):
        loading.load_tenant_text(text, "bomb.yaml", PLATFORM)
