"""The loader refuses every bad file before anything is deployed, all its problems at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.config import loading
from controlplane.errors import ConfigError
from tests.unit import test_validation

PLATFORM = test_validation.PLATFORM
GOOD = test_validation.GOOD  # the valid tenant file the rule tables edit
FILE = "tenants/acme.yaml"


def _problems(text: str, file: str = FILE) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        loading.load_tenant_text(text, file, PLATFORM)
    assert caught.value.exit_code == 2
    return caught.value.message.splitlines()


REFUSED = [
    # (reason, edits old -> new, want: every `line: field: message fragment` listed)
    (
        "a key written twice: the last would win silently",
        [("  tier: enterprise\n", "  tier: premium\n  tier: enterprise\n")],
        ["5: tenant.tier: duplicate key 'tier' (first at line 4)"],
    ),
    (
        "a key written twice in a flow mapping",
        [('cpu: "8"', 'cpu: "8", cpu: "9"')],
        ["9: tenant.limits.cpu: duplicate key 'cpu' (first at line 9)"],
    ),
    (
        "a duplicate key is listed with the schema and rule problems",
        [
            ("  name: Acme\n", "  name: Acme\n  name: [1, 2]\n"),
            ("pci_dss_level: 2", "pci_dss_level: 1"),
        ],
        [
            "4: tenant.name: duplicate key 'name' (first at line 3)",
            "4: tenant.name: Input should be a valid string (got [1, 2])",
            "11: tenant.compliance.pci_dss_level: PCI-DSS level 1 requires tier premium",
        ],
    ),
    (
        "a schema error does not hide the rule errors",
        [("name: Acme", "name: [1, 2]"), ("pci_dss_level: 2", "pci_dss_level: 1")],
        [
            "3: tenant.name: Input should be a valid string (got [1, 2])",
            "10: tenant.compliance.pci_dss_level: PCI-DSS level 1 requires tier premium",
        ],
    ),
    (
        "a bad quantity does not hide another limit over the tier maximum",
        [('cpu: "8"', 'cpu: "lots"'), ("memory: 16Gi", "memory: 1Ti")],
        [
            "9: tenant.limits.cpu: 'lots' is not a Kubernetes quantity",
            "9: tenant.limits.memory: 1Ti exceeds the enterprise tier maximum of 64Gi",
        ],
    ),
    (
        "a bad region does not hide a custom domain under the base domain",
        [
            ("region: us-east-1", "region: us-esat-1"),
            ("[shop.acme.com]", "[x.tenants.example.com]"),
        ],
        [
            "5: tenant.region: 'us-esat-1' is not a region id",
            "8: tenant.domains.custom[0]: 'x.tenants.example.com' is under the platform's base",
        ],
    ),
    (
        "a custom domain that is no domain name at all",
        [("[shop.acme.com]", '["Not A Domain!"]')],
        ["8: tenant.domains.custom[0]: 'Not A Domain!' is not a valid domain name"],
    ),
    (
        "an empty key is named without a trailing dot",
        [("  name: Acme\n", "  name: Acme\n  '': x\n")],
        ["4: tenant.'': unknown key (allowed here: ai, branding,"],
    ),
    (
        "a tier of the wrong type shows the value",
        [("tier: enterprise", "tier: 5")],
        ["4: tenant.tier: 5 is not a tier: use one of standard, enterprise, premium"],
    ),
    (
        "a feature flag of the wrong type shows the value",
        [("  limits:", "  features: {ai_agents: maybe}\n  limits:")],
        ["9: tenant.features.ai_agents: Input should be a valid boolean (got 'maybe')"],
    ),
    (
        "a literal out of range shows the value",
        [("pci_dss_level: 2", "pci_dss_level: 7")],
        ["10: tenant.compliance.pci_dss_level: Input should be 1, 2, 3 or 4 (got 7)"],
    ),
    (
        "a residency entry that is no region id",
        [("data_residency: [us-east-1, us-west-2]", "data_residency: [us-east-1, 42]")],
        ["10: tenant.compliance.data_residency[1]: Input should be a valid string (got 42)"],
    ),
]


@pytest.mark.parametrize(("reason", "edits", "want"), REFUSED, ids=[c[0] for c in REFUSED])
def test_every_problem_of_a_file_is_listed(
    reason: str, edits: list[tuple[str, str]], want: list[str]
) -> None:
    text = GOOD
    for old, new in edits:
        assert old in text, reason
        text = text.replace(old, new)
    lines = _problems(text)
    for fragment in want:
        assert any(line.startswith(f"{FILE}:{fragment}") for line in lines), (fragment, lines)
    assert len(lines) == len(want), lines
    assert not any(line.split(": ")[1].endswith(".") for line in lines), lines


def test_unparsed_tier_silences_the_rules_that_read_it() -> None:
    # pci level 1 and a cpu limit are judged against the tier: with no tier, they are not.
    text = GOOD.replace("tier: enterprise", "tier: gold").replace('cpu: "8"', 'cpu: "100"')
    lines = _problems(text.replace("pci_dss_level: 2", "pci_dss_level: 1"))
    assert lines == [
        f"{FILE}:4: tenant.tier: 'gold' is not a tier: use one of standard, enterprise, premium"
    ]


def test_duplicate_keys_in_platform_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text("platform:\n  base_domain: a.example.com\n  base_domain: b.example.com\n")
    with pytest.raises(ConfigError) as caught:
        loading.load_platform(path)
    assert caught.value.message == (
        f"{path}:3: platform.base_domain: duplicate key 'base_domain' (first at line 2): "
        "YAML would keep only the last value; remove one"
    )


def test_merge_keys_are_not_duplicates() -> None:
    text = GOOD.replace(
        '  limits: {cpu: "8", memory: 16Gi, pods: 50}\n',
        '  limits:\n    <<: {cpu: "4", memory: 8Gi}\n    cpu: "8"\n',
    )
    assert loading.load_tenant_text(text, FILE, PLATFORM).tenant.limits.cpu == "8"


CUSTOM_DOMAINS = [
    # (reason, as written, want as stored)
    ("upper case is lowered", "Shop.Acme.COM", "shop.acme.com"),
    ("the root dot is dropped", "shop.acme.com.", "shop.acme.com"),
    (
        "an internationalized name becomes punycode",
        "shop.bücher.example",
        "shop.xn--bcher-kva.example",
    ),
    ("punycode as written is kept", "shop.xn--bcher-kva.example", "shop.xn--bcher-kva.example"),
]


@pytest.mark.parametrize(
    ("reason", "written", "want"), CUSTOM_DOMAINS, ids=[c[0] for c in CUSTOM_DOMAINS]
)
def test_custom_domains_are_normalized(reason: str, written: str, want: str) -> None:
    text = GOOD.replace("[shop.acme.com]", f'["{written}"]')
    source = loading.load_tenant_text(text, FILE, PLATFORM)
    assert source.tenant.domains.custom == (want,), reason


def test_same_custom_domain_in_other_case_collides(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    other = "tenant:\n  id: other\n  name: O\n  tier: standard\n  region: us-east-1\n"
    (tmp_path / "b.yaml").write_text(other + "  domains: {custom: [SHOP.acme.com]}\n")
    with pytest.raises(ConfigError) as caught:
        loading.load_tenants([tmp_path], PLATFORM)
    assert caught.value.message == (
        f"{tmp_path / 'b.yaml'}:6: tenant.domains.custom[0]: hostname 'shop.acme.com' "
        f"is already claimed by {tmp_path / 'a.yaml'}"
    )


EMPTY = [
    # (reason, files in the directory)
    ("an empty directory", {}),
    ("only a platform file", {"platform.yaml": "platform:\n  base_domain: example.com\n"}),
    ("no YAML at all", {"README.md": "# tenants\n"}),
]


@pytest.mark.parametrize(("reason", "files"), EMPTY, ids=[c[0] for c in EMPTY])
def test_directory_without_tenant_files_is_an_error(
    tmp_path: Path, reason: str, files: dict[str, str]
) -> None:
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    with pytest.raises(ConfigError) as caught:
        loading.load([tmp_path])
    assert caught.value.message == f"{tmp_path}: no tenant files (*.yaml, *.yml) in this directory"
    assert caught.value.exit_code == 2, reason


def test_missing_platform_file_is_said_with_the_defaults_in_force(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(GOOD)
    loaded = loading.load([tmp_path])
    assert loaded.platform.uses_defaults and loaded.platform.file is None
    assert loaded.platform.notices == (
        f"no platform.yaml found beside {tmp_path}: using built-in defaults (base_domain "
        "tenants.example.com, ingress_target ingress.tenants.example.com, regions us-east-1, "
        "us-west-2, eu-west-1, kubernetes render, cloudflare render, terraform_backend local)",
    )
    assert [s.tenant.id for s in loaded.tenants] == ["acme"]


def test_empty_platform_file_is_said_too(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(GOOD)
    (tmp_path / "platform.yaml").write_text("# nothing yet\n")
    platform = loading.load([tmp_path]).platform
    assert platform.uses_defaults and platform.file == str(tmp_path / "platform.yaml")
    assert platform.notices[0].startswith(f"{tmp_path / 'platform.yaml'} is empty: using built-in")


def test_platform_file_found_beside_the_tenants_has_no_notice(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(GOOD)
    (tmp_path / "platform.yaml").write_text("platform:\n  base_domain: Shop.Example.com\n")
    platform = loading.load([tmp_path]).platform
    assert (platform.uses_defaults, platform.notices) == (False, ())
    assert (platform.file, platform.config.base_domain) == (
        str(tmp_path / "platform.yaml"),
        "shop.example.com",
    )


def test_bad_platform_file_and_bad_tenant_file_are_listed_in_one_run(tmp_path: Path) -> None:
    (tmp_path / "platform.yaml").write_text('platform:\n  base_domain: "Not A Domain!"\n')
    (tmp_path / "acme.yaml").write_text(GOOD.replace("tier: enterprise", "tier: gold"))
    (tmp_path / "globex.yaml").write_text(GOOD.replace("id: acme", "id: Globex"))
    with pytest.raises(ConfigError) as caught:
        loading.load([tmp_path])
    assert caught.value.message.splitlines() == [
        f"{tmp_path / 'platform.yaml'}:2: platform.base_domain: 'Not A Domain!' is not a valid "
        "domain name: use dot-separated labels of letters, digits and '-' (example: shop.acme.com)",
        f"{tmp_path / 'acme.yaml'}:4: tenant.tier: 'gold' is not a tier: use one of standard, "
        "enterprise, premium",
        f"{tmp_path / 'globex.yaml'}:2: tenant.id: 'Globex' is not a DNS label: use lowercase "
        "letters, digits and '-', start and end with a letter or digit, at most 40 characters",
    ]
