"""Value validation of custom resources against their CRD's structural schema.

kube-apiserver validates every write of a CR against `openAPIV3Schema` (after pruning) and
answers 422 Invalid with one cause per problem, worded like k8s.io/kube-openapi's validator:
`spec.tier: Unsupported value: "gold": supported values: "standard", "enterprise"`. The fake
checks the keywords structural schemas use: type (with `nullable`, `x-kubernetes-int-or-string`
and `x-kubernetes-preserve-unknown-fields`), enum, pattern, lengths, bounds, item counts and
required properties. CEL rules (`x-kubernetes-validations`) and `anyOf`/`oneOf`/`not` value
validations are not evaluated: the fake is more lenient there, never stricter.
"""

from __future__ import annotations

import json
import re
from typing import Any

Cause = tuple[str, str, str]  # (reason, field, detail), as errors.invalid takes them

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
}


def problems(schema: dict[str, Any], value: Any, path: str) -> list[Cause]:
    """Every violation of `schema` by `value` (at dotted `path`)."""
    if value is None:
        allowed = schema.get("nullable") or "type" not in schema
        return [] if allowed else [("FieldValueInvalid", path, _type_detail(value, schema))]
    if not _type_ok(schema, value):
        return [("FieldValueInvalid", path, _type_detail(value, schema))]
    found = _scalar_problems(schema, value, path)
    if isinstance(value, dict):
        found += _object_problems(schema, value, path)
    elif isinstance(value, list):
        found += _count_problems(schema, value, path)
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                found += problems(items, item, f"{path}[{index}]")
    return found


def _type_ok(schema: dict[str, Any], value: Any) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, int | str) and not isinstance(value, bool)
    wanted = schema.get("type")
    if not wanted:
        return True
    if isinstance(value, bool) and wanted != "boolean":
        return False
    if wanted == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(str(wanted), (object,)))


def _go_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "integer" if float(value).is_integer() else "number"
    return names.get(type(value), type(value).__name__)


def _type_detail(value: Any, schema: dict[str, Any]) -> str:
    return f'"{_go_type(value)}": must be of type {schema.get("type")}'


def _scalar_problems(schema: dict[str, Any], value: Any, path: str) -> list[Cause]:
    found: list[Cause] = []
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        allowed = ", ".join(json.dumps(e) for e in enum)
        found.append(
            ("FieldValueNotSupported", path, f"{json.dumps(value)}: supported values: {allowed}")
        )
    if isinstance(value, str):
        pattern = schema.get("pattern")
        if pattern is not None and not re.search(pattern, value):
            found.append(("FieldValueInvalid", path, f"\"{value}\": should match '{pattern}'"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            found.append(
                ("FieldValueTooLong", path, f"may not be more than {schema['maxLength']} bytes")
            )
        if "minLength" in schema and len(value) < schema["minLength"]:
            detail = f"should be at least {schema['minLength']} chars long"
            found.append(("FieldValueInvalid", path, f'"{value}": {detail}'))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            detail = f"should be greater than or equal to {schema['minimum']}"
            found.append(("FieldValueInvalid", path, f"{value}: {detail}"))
        if "maximum" in schema and value > schema["maximum"]:
            detail = f"should be less than or equal to {schema['maximum']}"
            found.append(("FieldValueInvalid", path, f"{value}: {detail}"))
    return found


def _count_problems(schema: dict[str, Any], value: list[Any], path: str) -> list[Cause]:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return [("FieldValueTooMany", path, f"must have at most {schema['maxItems']} items")]
    if "minItems" in schema and len(value) < schema["minItems"]:
        return [("FieldValueInvalid", path, f"should have at least {schema['minItems']} items")]
    return []


def _object_problems(schema: dict[str, Any], value: dict[str, Any], path: str) -> list[Cause]:
    found: list[Cause] = [
        ("FieldValueRequired", f"{path}.{name}" if path else name, "")
        for name in schema.get("required") or []
        if name not in value
    ]
    declared = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for name, child in value.items():
        where = f"{path}.{name}" if path else name
        if name in declared:
            found += problems(declared[name], child, where)
        elif isinstance(extra, dict):
            found += problems(extra, child, where)
    return found
