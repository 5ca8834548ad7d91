"""Unknown fields: dropped (Warn, Ignore) or refused (Strict), as `fieldValidation` asks.

A real apiserver cannot store a field its schema does not declare: built-in kinds decode into
Go structs and CRD objects are pruned to their structural schema. So a typo in a manifest
silently disappears (with a `Warning` header under the default `Warn`), or, with
`fieldValidation=Strict` (kubectl's default), fails with 400 BadRequest.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.kube_apiserver.schemas import Schema

# Metadata and type fields every object may carry even when a CRD schema omits them.
_ALWAYS = frozenset({"apiVersion", "kind", "metadata"})


def prune(value: Any, schema: Schema, prefix: str = "") -> list[str]:
    """Remove undeclared fields from `value` in place; returns their dotted paths."""
    if isinstance(value, list):
        found: list[str] = []
        for item in value:
            found += prune(item, schema.item(), prefix)
        return found
    if not isinstance(value, dict):
        return []
    declared = schema.properties
    closed = bool(declared) and not schema.preserves_unknown
    found = []
    for name in list(value):
        path = f"{prefix}.{name}" if prefix else name
        if closed and name not in declared and not (prefix == "" and name in _ALWAYS):
            del value[name]
            found.append(path)
        else:
            found += prune(value[name], schema.child(name), path)
    return found
