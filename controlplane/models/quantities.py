"""Kubernetes resource quantities ("500m", "16Gi", "1e3", 8): values and canonical text.

A real API server decodes every quantity and writes it back in canonical form (`0.5` is
stored as `500m`, `8192Mi` as `8Gi`, `1000m` as `1`), so a client that compares desired
and live objects as text sees drift for ever. `canonical` follows
k8s.io/apimachinery `resource.Quantity.CanonicalizeBytes`; `parse` gives the value for
comparisons. Negative quantities are refused: nothing a tenant sizes can be below zero.
"""

from __future__ import annotations

import functools
import re
from decimal import ROUND_CEILING, Context, Decimal, localcontext

__all__ = ["canonical", "parse"]

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {exponent: suffix for suffix, exponent in _DECIMAL.items()}
_BINARY_SUFFIX = {exponent: suffix for suffix, exponent in _BINARY.items()}
_PATTERN = re.compile(
    r"^(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<exponent>[eE][+-]?[0-9]+)|(?P<suffix>[KMGTPE]i|[numkMGTPE]?))$"
)
_NANO = Decimal("1e-9")
# Enough digits for any quantity a server accepts (int64 nano units) and then some; larger
# values are refused rather than silently rounded.
_EXACT = Context(prec=60, Emax=99, Emin=-999_999)
_BINARY_FLOOR = 1024


@functools.lru_cache(maxsize=4096)
def _read(value: str | int | float) -> tuple[Decimal, str]:
    """(value in base units rounded up to nano units, format: binary, decimal or exponent)."""
    text = str(value).strip()
    match = _PATTERN.match(text)
    if not match:
        msg = f"'{text}' is not a Kubernetes quantity (examples: 500m, 2, 512Mi, 16Gi, 1e3)"
        raise ValueError(msg)
    try:
        with localcontext(_EXACT):
            return _value(match)
    except ArithmeticError as exc:  # decimal overflow: far beyond what a server accepts
        msg = f"'{text}' is too large for a Kubernetes quantity"
        raise ValueError(msg) from exc


def _value(match: re.Match[str]) -> tuple[Decimal, str]:
    number = Decimal(match["number"])
    if match["exponent"]:
        amount, style = number.scaleb(int(match["exponent"][1:])), "exponent"
    elif match["suffix"] in _BINARY:
        amount, style = number * 2 ** _BINARY[match["suffix"]], "binary"
    else:
        amount, style = number.scaleb(_DECIMAL[match["suffix"]]), "decimal"
    # The server keeps nano precision, rounding anything finer up.
    return amount.quantize(_NANO, rounding=ROUND_CEILING).normalize(), style


def parse(value: str | int | float) -> Decimal:
    """Return the quantity as a Decimal in base units.

    Raises:
        ValueError: the text is not a quantity.
    """
    return _read(value)[0]


@functools.lru_cache(maxsize=4096, typed=True)  # a fleet spells the same few sizes over and over
def canonical(value: str | int | float) -> str:
    """The text a real API server stores for the quantity (`0.5` -> `500m`, `1024Mi` -> `1Gi`).

    Raises:
        ValueError: the text is not a quantity.
    """
    amount, style = _read(value)
    if not amount:
        return "0"
    if style == "binary" and amount >= _BINARY_FLOOR and amount == amount.to_integral_value():
        return _base1024(int(amount))
    mantissa, exponent = _base1000(amount)
    if style == "exponent":
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    return f"{mantissa}{_DECIMAL_SUFFIX[exponent]}"


def _base1000(amount: Decimal) -> tuple[int, int]:
    """(mantissa, exponent): an integer mantissa, the largest exponent that is a multiple of 3."""
    sign, digits, exponent = amount.normalize().as_tuple()
    if not isinstance(exponent, int):  # pragma: no cover - the pattern admits finite numbers
        raise ValueError(str(amount))
    mantissa = int("".join(map(str, digits))) * (-1 if sign else 1)
    shift = exponent % 3
    mantissa, exponent = mantissa * 10**shift, exponent - shift
    top = max(_DECIMAL_SUFFIX)
    if exponent > top:
        mantissa, exponent = mantissa * 10 ** (exponent - top), top
    return mantissa, exponent


def _base1024(amount: int) -> str:
    exponent = 0
    while amount % 1024 == 0 and exponent < max(_BINARY_SUFFIX):
        amount //= 1024
        exponent += 10
    return f"{amount}{_BINARY_SUFFIX.get(exponent, '')}"
