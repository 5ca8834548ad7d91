"""Kubernetes resource quantities ("500m", "16Gi", 8) parsed to numbers for comparison.

Only the suffixes tenants and tier profiles use are accepted; anything else is a
validation error rather than a silent mis-read.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal, InvalidOperation

__all__ = ["parse"]

_SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
}
_PATTERN = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


@functools.lru_cache(maxsize=4096)
def parse(value: str | int | float) -> Decimal:
    """Return the quantity as a Decimal in base units.

    Raises:
        ValueError: the text is not a quantity.
    """
    text = str(value).strip()
    match = _PATTERN.match(text)
    if not match:
        msg = f"'{text}' is not a Kubernetes quantity (examples: 500m, 2, 512Mi, 16Gi)"
        raise ValueError(msg)
    try:
        number = Decimal(match.group(1))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
        raise ValueError(text) from exc
    return number * _SUFFIXES[match.group(2) or ""]
