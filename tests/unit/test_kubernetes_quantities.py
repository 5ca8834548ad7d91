"""Canonical Kubernetes quantities (k8s.io/apimachinery `resource.Quantity`), table-tested.

The same table runs against the fake apiserver's own canonicaliser, so the fake and the
control plane agree on what a real server stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from controlplane.models import quantities
from tests.fakes.kube_apiserver import quantities as fake_quantities


@dataclass(frozen=True)
class QuantityCase:
    reason: str
    raw: str | int
    want: str
    value: Decimal


CASES = [
    QuantityCase("a decimal fraction becomes milli units", "0.5", "500m", Decimal("0.5")),
    QuantityCase("milli units keep three digits per step", "1.5", "1500m", Decimal("1.5")),
    QuantityCase("1024 Mi is one Gi", "1024Mi", "1Gi", Decimal(2**30)),
    QuantityCase("8192 Mi is 8 Gi", "8192Mi", "8Gi", Decimal(2**33)),
    QuantityCase("not a whole Gi: stays Mi", "1536Mi", "1536Mi", Decimal(1536 * 2**20)),
    QuantityCase("a binary fraction: re-spelled", "1.5Gi", "1536Mi", Decimal(1536 * 2**20)),
    QuantityCase("binary below 1024 is written as a decimal", "0.5Ki", "512", Decimal(512)),
    QuantityCase("the exponent form stays an exponent", "1e3", "1e3", Decimal(1000)),
    QuantityCase("an exponent form with a fraction", "1.5e3", "1500", Decimal(1500)),
    QuantityCase("1000 milli is one", "1000m", "1", Decimal(1)),
    QuantityCase("thousands take the k suffix", "2000", "2k", Decimal(2000)),
    QuantityCase("1500 has no exact suffix", "1500", "1500", Decimal(1500)),
    QuantityCase("a bare integer", 10, "10", Decimal(10)),
    QuantityCase("zero", "0", "0", Decimal(0)),
    QuantityCase("a lone E is exa, not an exponent", "1E", "1E", Decimal(10) ** 18),
    QuantityCase("finer than nano rounds up", "0.0000000001", "1n", Decimal("1e-9")),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.reason)
def test_canonical_form_and_value(case: QuantityCase) -> None:
    assert quantities.canonical(case.raw) == case.want
    assert quantities.parse(case.raw) == case.value
    assert quantities.parse(case.want) == case.value  # canonical text keeps the value


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.reason)
def test_the_fake_apiserver_stores_the_same_canonical_form(case: QuantityCase) -> None:
    assert fake_quantities.canonical(case.raw) == case.want


@pytest.mark.parametrize("raw", ["-1", "1x", "", "1e", "Mi", "1.2.3", "1 Gi", "1ki"])
def test_what_is_not_a_non_negative_quantity_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        quantities.canonical(raw)
