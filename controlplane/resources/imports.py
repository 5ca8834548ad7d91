"""Parse initial-data files (CSV with a header row, JSON Lines) into import batches. Pure.

The table is the file name up to its first dot (`orders.csv`, `orders.2024.jsonl` ->
`orders`); columns come from the CSV header or the JSON objects' keys, in first-seen
order. Values are loaded as text (Postgres casts them to an existing column's type);
an empty CSV field and a JSON `null` are NULL. The checksum is the sha256 of the bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from typing import NoReturn

from controlplane.errors import ConfigError, SourceLocation
from controlplane.models.imports import ImportBatch, SourceFile

__all__ = ["parse", "table_of"]

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# The import log lives beside the tenant's tables: no file may load into it.
_RESERVED = frozenset({"tenantctl_imports"})


def table_of(name: str) -> str:
    """The table a file loads into (its name up to the first dot, lowercased)."""
    return name.split(".", 1)[0].lower()


def parse(source: SourceFile) -> ImportBatch:
    """Rows of one file; ConfigError naming file, line and problem when it is malformed."""
    table = table_of(source.name)
    if not _IDENTIFIER.match(table) or table in _RESERVED:
        _refuse(source.name, None, f"'{table}' is not a usable table name")
    text = _text(source)
    if source.name.lower().endswith(".csv"):
        columns, rows = _csv(source.name, text)
    else:
        columns, rows = _json_lines(source.name, text)
    for column in columns:
        if not _IDENTIFIER.match(column):
            _refuse(source.name, 1, f"column '{column}' is not a lowercase SQL identifier")
    checksum = hashlib.sha256(source.data).hexdigest()
    return ImportBatch(source.name, table, checksum, columns, rows)


def _refuse(file: str, line: int | None, problem: str) -> NoReturn:
    raise ConfigError([(SourceLocation(file, line, "data_import"), problem)])


def _text(source: SourceFile) -> str:
    try:
        return source.data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        _refuse(source.name, None, f"not UTF-8: {exc}")


def _csv(name: str, text: str) -> tuple[tuple[str, ...], tuple[tuple[str | None, ...], ...]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        _refuse(name, 1, "no header row")
    columns = tuple(c.strip().lower() for c in header)
    rows = []
    for values in reader:
        if not values:
            continue  # a blank line
        if len(values) != len(columns):
            _refuse(name, reader.line_num, f"{len(values)} fields, header has {len(columns)}")
        rows.append(tuple(v if v != "" else None for v in values))
    return columns, tuple(rows)


def _json_lines(name: str, text: str) -> tuple[tuple[str, ...], tuple[tuple[str | None, ...], ...]]:
    objects: list[dict[str, object]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            _refuse(name, number, f"not JSON: {exc.msg}")
        if not isinstance(value, dict):
            _refuse(name, number, "each line must be a JSON object")
        objects.append(value)
    columns = tuple(dict.fromkeys(key.lower() for obj in objects for key in obj))
    rows = tuple(
        tuple(_scalar({k.lower(): v for k, v in obj.items()}.get(c)) for c in columns)
        for obj in objects
    )
    return columns, rows


def _scalar(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, sort_keys=True)
