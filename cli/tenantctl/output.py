"""Rendering of results as a rich table, JSON or YAML (`-o`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["Format", "emit"]


class Format(StrEnum):
    """Output formats of every listing command."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def emit(
    console: Console, data: Any, fmt: Format, *, columns: Sequence[str] = (), title: str = ""
) -> None:
    """Print `data` (a list of rows or one mapping) in the chosen format."""
    plain = _plain(data)
    # Machine formats bypass rich: no wrapping, colour or markup may touch them.
    if fmt is Format.JSON:
        console.file.write(json.dumps(plain, indent=2) + "\n")
    elif fmt is Format.YAML:
        console.file.write(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True))
    else:
        rows = plain if isinstance(plain, list) else [plain]
        table = Table(title=title or None)
        cols = list(columns) or (list(rows[0]) if rows else [])
        for col in cols:
            table.add_column(col.replace("_", " "))
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in cols))
        console.print(table)


def _cell(value: Any) -> Text:
    """Cell text shown as is: `[requests.cpu]` in a field path is data, not rich markup."""
    if isinstance(value, list):
        return Text(", ".join(map(str, value)))
    return Text("" if value is None else str(value))
