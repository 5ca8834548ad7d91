"""Field paths and field sets: the vocabulary of managedFields (structured-merge-diff).

A path is a tuple of elements spelled as in `fieldsV1`: `f:<name>` (struct field or map key),
`k:{"name":"x"}` (item of a map-list, keys as compact sorted JSON) and `v:"x"` (item of a set).
A set of paths serialises to the `fieldsV1` trie, where `".": {}` marks a node that is itself
a member and has children. `walk` decomposes an object into the paths a manager owns when it
writes that object, following the schema (atomic lists/structs are single leaves).
"""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.kube_apiserver.schemas import Schema

Path = tuple[str, ...]

# Metadata the server owns: never part of any manager's field set.
SERVER_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)


# Emptied containers are dropped (Go's omitempty), except these structs.
_KEPT_WHEN_EMPTY = frozenset({(), ("f:spec",), ("f:metadata",)})


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def key_element(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    """The `k:{...}` element naming a map-list item."""
    return "k:" + _compact({k: item[k] for k in keys if k in item})


def walk(value: Any, schema: Schema, prefix: Path = ()) -> dict[Path, bool]:
    """Paths owned by whoever wrote `value`; the bool says "compare values" (a leaf).

    Non-leaf members (map-list and set items, empty maps) only assert existence.
    """
    if value is None:
        return {}
    if isinstance(value, dict) and not schema.atomic_struct:
        return _walk_map(value, schema, prefix)
    if isinstance(value, list) and schema.list_type in ("map", "set"):
        return _walk_list(value, schema, prefix)
    return {prefix: True} if prefix else {}


def _walk_map(value: dict[str, Any], schema: Schema, prefix: Path) -> dict[Path, bool]:
    if not value:
        return {prefix: False} if prefix else {}
    found: dict[Path, bool] = {}
    for name, child in value.items():
        found.update(walk(child, schema.child(name), (*prefix, f"f:{name}")))
    return found


def _walk_list(value: list[Any], schema: Schema, prefix: Path) -> dict[Path, bool]:
    found: dict[Path, bool] = {}
    if schema.list_type == "set":
        for item in value:
            found[(*prefix, "v:" + _compact(item))] = False
        return found
    keys = schema.list_keys
    for item in value:
        if not isinstance(item, dict):
            continue
        item_path = (*prefix, key_element(item, keys))
        found.update(_walk_map(item, schema.item(), item_path))
        found[item_path] = False
    return found


def map_nodes(value: Any, schema: Schema, prefix: Path = ()) -> set[Path]:
    """Paths of the granular maps (labels, data, matchLabels...) inside `value`.

    An Update entry owns the maps its write created, marked `".": {}` in `fieldsV1`.
    """
    found: set[Path] = set()
    if isinstance(value, dict) and not schema.atomic_struct:
        if prefix and schema.is_map:
            found.add(prefix)
        for name, child in value.items():
            found |= map_nodes(child, schema.child(name), (*prefix, f"f:{name}"))
    elif isinstance(value, list) and schema.list_type == "map":
        for item in value:
            if isinstance(item, dict):
                item_path = (*prefix, key_element(item, schema.list_keys))
                found |= map_nodes(item, schema.item(), item_path) - {item_path}
    return found


def object_fields(obj: dict[str, Any], schema: Schema, *, skip_status: bool) -> dict[Path, bool]:
    """Paths of a whole object, without apiVersion/kind, server metadata and maybe status."""
    trimmed = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    if skip_status:
        trimmed.pop("status", None)
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_METADATA}
    trimmed.pop("metadata", None)
    if meta:
        trimmed["metadata"] = meta
    return walk(trimmed, schema)


def _find_item(items: list[Any], element: str) -> int | None:
    kind, _, raw = element.partition(":")
    wanted = json.loads(raw)
    for index, item in enumerate(items):
        if kind == "v" and item == wanted:
            return index
        if kind == "k" and isinstance(item, dict) and _has_keys(item, wanted):
            return index
    return None


def _has_keys(item: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(item.get(k) == v for k, v in wanted.items())


def lookup(obj: Any, path: Path) -> tuple[bool, Any]:
    """(found, value) at `path` in `obj`."""
    current = obj
    for element in path:
        if element.startswith("f:") and isinstance(current, dict):
            name = element[2:]
            if name not in current:
                return False, None
            current = current[name]
        elif isinstance(current, list) and element[:2] in ("k:", "v:"):
            index = _find_item(current, element)
            if index is None:
                return False, None
            current = current[index]
        else:
            return False, None
    return True, current


def remove(obj: Any, path: Path) -> None:
    """Delete the field or list item at `path`, then drop containers this left empty."""
    if not path:
        return
    found, parent = lookup(obj, path[:-1])
    if not found:
        return
    element = path[-1]
    if element.startswith("f:") and isinstance(parent, dict):
        parent.pop(element[2:], None)
    elif isinstance(parent, list):
        index = _find_item(parent, element)
        if index is not None:
            parent.pop(index)
    if parent in ({}, []) and path[:-1] not in _KEPT_WHEN_EMPTY:
        remove(obj, path[:-1])


def to_fields_v1(paths: set[Path] | frozenset[Path]) -> dict[str, Any]:
    """Serialise a set of paths to the `fieldsV1` trie."""
    root: dict[str, Any] = {}
    members: set[Path] = set(paths)
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    return _mark(root, (), members)


def _mark(node: dict[str, Any], prefix: Path, members: set[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if prefix in members and node:
        out["."] = {}
    for element in sorted(node):
        out[element] = _mark(node[element], (*prefix, element), members)
    return out


def from_fields_v1(trie: dict[str, Any], prefix: Path = ()) -> set[Path]:
    """Parse a `fieldsV1` trie back to a set of paths."""
    paths: set[Path] = set()
    if prefix and (not trie or "." in trie):
        paths.add(prefix)
    for element, child in trie.items():
        if element != ".":
            paths |= from_fields_v1(child, (*prefix, element))
    return paths


def describe(path: Path) -> str:
    """A path as conflict messages print it: `.metadata.labels.team`, `.x[name="a"]`."""
    parts: list[str] = []
    for element in path:
        kind, _, raw = element.partition(":")
        if kind == "f":
            parts.append("." + raw)
        elif kind == "k":
            keys = json.loads(raw)
            parts.append("[" + ",".join(f"{k}={_compact(v)}" for k, v in keys.items()) + "]")
        else:
            parts.append("[=" + raw + "]")
    return "".join(parts)


def has_descendant(paths: set[Path] | frozenset[Path], path: Path) -> bool:
    """True if some member of `paths` lies strictly below `path`."""
    size = len(path)
    return any(len(p) > size and p[:size] == path for p in paths)
