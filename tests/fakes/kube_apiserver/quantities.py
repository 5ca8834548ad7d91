"""Resource quantities in canonical form, as the apiserver stores and returns them.

A real server decodes `1024Mi` into a Quantity and writes it back as `1Gi`; `1000m` becomes
`1`, `0.5` becomes `500m`, `2000` becomes `2k` and a bare number `10` becomes `"10"`. A client
that compares its desired objects with live ones naively sees a perpetual diff, so the fake
canonicalises the same way (k8s.io/apimachinery `resource.Quantity.CanonicalizeBytes`).
"""

from __future__ import annotations

import re
from decimal import ROUND_UP, Decimal, InvalidOperation
from typing import Any

from tests.fakes.kube_apiserver.schemas import Schema

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = {v: k for k, v in _BINARY.items()}
_PATTERN = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[a-zA-Z]*)$")
_BINARY_FLOOR = 1024


def canonical(raw: Any) -> Any:
    """The canonical string of a quantity; unparsable values are returned unchanged."""
    parsed = _parse(str(raw).strip())
    if parsed is None:
        return raw
    value, suffix = parsed
    if suffix in _BINARY:
        if abs(value) >= _BINARY_FLOOR and value == value.to_integral_value():
            return _base1024(int(value))
        return _decimal(value)
    if _is_exponent(suffix):
        mantissa, exponent = _scaled(value)
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    return _decimal(value)


def _parse(text: str) -> tuple[Decimal, str] | None:
    """(value in base units, suffix) or None."""
    match = _PATTERN.match(text)
    if not match:
        return None
    number, suffix = match.groups()
    try:
        value = Decimal(number)
    except InvalidOperation:
        return None
    if suffix in _BINARY:
        return value * Decimal(2) ** _BINARY[suffix], suffix
    if suffix in _DECIMAL:
        return value * Decimal(10) ** _DECIMAL[suffix], suffix
    if _is_exponent(suffix):
        return value * Decimal(10) ** int(suffix[1:]), suffix
    return None


def _is_exponent(suffix: str) -> bool:
    """`e3`/`E-2` is an exponent; a lone `E` is the exa suffix (decimal SI)."""
    return len(suffix) > 1 and suffix[:1] in ("e", "E")


def _scaled(value: Decimal) -> tuple[int, int]:
    """(mantissa, exponent) with an integer mantissa and exponent a multiple of 3."""
    exponent = 0
    while value != value.to_integral_value() and exponent > -9:
        value *= 1000
        exponent -= 3
    # The apiserver keeps nano precision and rounds anything finer up (away from zero).
    mantissa = int(value.to_integral_value(rounding=ROUND_UP))
    while mantissa and mantissa % 1000 == 0 and exponent < 18:
        mantissa //= 1000
        exponent += 3
    return mantissa, exponent


def _decimal(value: Decimal) -> str:
    mantissa, exponent = _scaled(value)
    return f"{mantissa}{_DECIMAL_SUFFIX[exponent]}" if mantissa else "0"


def _base1024(value: int) -> str:
    exponent = 0
    while value and value % 1024 == 0 and exponent < 60:
        value //= 1024
        exponent += 10
    return f"{value}{_BINARY_SUFFIX.get(exponent, '')}"


def _is_quantity(schema: Schema) -> bool:
    return str(schema.node.get("$ref", "")).endswith(".Quantity")


def canonicalize(value: Any, schema: Schema) -> Any:
    """Canonicalise every Quantity-typed field of `value` (returns the new value)."""
    if _is_quantity(schema) and value is not None:
        return canonical(value)
    if isinstance(value, dict):
        return {k: canonicalize(v, schema.child(k)) for k, v in value.items()}
    if isinstance(value, list):
        item = schema.item()
        return [canonicalize(v, item) for v in value]
    return value
