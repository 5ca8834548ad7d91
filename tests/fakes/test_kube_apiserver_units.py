"""Table tests of the fake's pure parts: quantities, selectors, field sets."""

from __future__ import annotations

import pytest

from tests.fakes.kube_apiserver import fieldsets, quantities, selectors
from tests.fakes.kube_apiserver.registry import default_registry


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("1024Mi", "1Gi"),
        ("1536Mi", "1536Mi"),
        ("1.5Gi", "1536Mi"),
        ("1000m", "1"),
        ("0.5", "500m"),
        ("2000", "2k"),
        (10, "10"),
        ("0", "0"),
        ("250m", "250m"),
        ("not-a-quantity", "not-a-quantity"),
        ("1.5", "1500m"),
        ("8192Mi", "8Gi"),
        ("1e3", "1e3"),
        ("1.5e3", "1500"),
        ("12e-2", "120e-3"),
        ("1E", "1E"),
        ("2P", "2P"),
        ("0.5Ki", "512"),
        ("1023Ki", "1023Ki"),
        ("0.0000000001", "1n"),
        ("1.0000000001", "1000000001n"),
    ],
)
def test_quantity_canonical_form(raw: object, want: str) -> None:
    assert quantities.canonical(raw) == want


@pytest.mark.parametrize(
    ("selector", "labels", "want"),
    [
        ("a=b", {"a": "b"}, True),
        ("a!=b", {}, True),
        ("a in (x, y)", {"a": "y"}, True),
        ("a notin (x)", {}, True),
        ("a,!b", {"a": "1"}, True),
        ("a,!b", {"a": "1", "b": "2"}, False),
        ("n<3", {"n": "5"}, False),
        ("", {"whatever": "x"}, True),
    ],
)
def test_label_selector_table(selector: str, labels: dict[str, str], want: bool) -> None:
    assert selectors.parse_labels(selector)(labels) is want


def test_bad_selectors_raise() -> None:
    with pytest.raises(selectors.SelectorError):
        selectors.parse_fields("spec.nodeName=x")
    with pytest.raises(selectors.SelectorError):
        selectors.parse_labels("n>x")


def test_fields_v1_round_trip_with_list_items() -> None:
    schema = default_registry().by_kind("ServiceAccount").schema()
    obj = {"metadata": {"labels": {"a": "1"}}, "secrets": [{"name": "s"}]}
    paths = set(fieldsets.walk(obj, schema))
    trie = fieldsets.to_fields_v1(paths)
    assert trie == {
        "f:metadata": {"f:labels": {"f:a": {}}},
        "f:secrets": {'k:{"name":"s"}': {".": {}, "f:name": {}}},
    }
    assert fieldsets.from_fields_v1(trie) == paths
    assert (
        fieldsets.describe(("f:secrets", 'k:{"name":"s"}', "f:name")) == '.secrets[name="s"].name'
    )


def test_package_exports_are_pinned() -> None:
    import tests.fakes.kube_apiserver as package  # noqa: PLC0415

    assert sorted(package.__all__) == [
        "ApiError",
        "FakeKubeApiServer",
        "RecordedRequest",
        "Store",
        "WriteOptions",
        "write_kubeconfig",
    ]
