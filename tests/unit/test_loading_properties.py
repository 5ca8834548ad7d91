"""Property: whatever YAML or mapping the loader is fed, it accepts it or raises ConfigError."""

from __future__ import annotations

import re
import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.config import loading
from controlplane.errors import ConfigError
from controlplane.models.platform import PlatformConfig

PLATFORM = PlatformConfig()
FIELDS = [
    "id",
    "name",
    "tier",
    "region",
    "domains",
    "subdomain",
    "custom",
    "features",
    "limits",
    "cpu",
    "memory",
    "pods",
    "compliance",
    "pci_dss_level",
    "data_residency",
    "lifecycle",
    "retention_days",
    "tenant",
    "branding",
    "ai",
    "data_import",
    "source",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(
        ["standard", "premium", "us-east-1", "acme", "8", "16Gi", "shop.acme.com", "2024-02-30"]
    ),
)
keys = st.one_of(
    st.sampled_from(FIELDS), st.text(max_size=10), st.integers(), st.booleans(), st.none()
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=6)
    ),
    max_leaves=25,
)


def _load(text: str) -> None:
    try:
        source = loading.load_tenant_text(text, "prop.yaml", PLATFORM)
    except ConfigError as exc:
        assert exc.problems and exc.exit_code == 2
        # YAML's line breaks (NEL and the Unicode separators too), as its marks count them.
        lines = len(re.split("\r\n|[\n\r\x85\u2028\u2029]", text))
        for location, message in exc.problems:
            assert location.file == "prop.yaml" and message
            assert not location.field.endswith("."), location
            assert location.line is None or 1 <= location.line <= lines, location
    else:
        assert source.tenant.id


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.just("tenant"), documents, min_size=1) | documents)
def test_any_mapping_is_accepted_or_config_error(document: object) -> None:
    _load(yaml.safe_dump(document, allow_unicode=True))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable + "{}[]:-&*!|>'\"%@`#ü\t", max_size=200))
def test_any_text_is_accepted_or_config_error(text: str) -> None:
    _load(text)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "id": st.text(max_size=45),
            "name": st.text(max_size=5),
            "tier": st.sampled_from(["standard", "enterprise", "premium", "gold"]),
            "region": st.sampled_from(["us-east-1", "eu-west-1", "ap-south-1", "x"]),
        },
        optional={
            "limits": st.fixed_dictionaries(
                {}, optional={"cpu": st.text(max_size=6), "memory": scalars, "pods": scalars}
            ),
            "domains": st.fixed_dictionaries(
                {},
                optional={
                    "subdomain": st.text(max_size=8),
                    "custom": st.lists(st.text(max_size=12), max_size=3),
                },
            ),
            "compliance": st.fixed_dictionaries(
                {},
                optional={
                    "pci_dss_level": st.integers(0, 5),
                    "data_residency": st.lists(st.text(max_size=10), max_size=3),
                },
            ),
        },
    )
)
def test_near_valid_tenants_are_accepted_or_config_error(tenant: dict[str, object]) -> None:
    _load(yaml.safe_dump({"tenant": tenant}, allow_unicode=True))
