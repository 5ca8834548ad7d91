"""The four ways a PATCH body changes an object: apply merge, strategic merge, JSON merge
(RFC 7386) and JSON patch (RFC 6902).

Apply and strategic merge are schema-driven (list keys, atomic structs); the other two are
schema-blind by definition. All functions are pure: they return new values and never mutate
their arguments.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.kube_apiserver import fieldsets
from tests.fakes.kube_apiserver.schemas import Schema


class PatchError(ValueError):
    """A patch that cannot be applied; `code` is 400 (malformed) or 422 (failed test op)."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


def apply_merge(live: Any, config: Any, schema: Schema) -> Any:
    """Merge an applied configuration into the live value; values from `config` win."""
    if isinstance(config, dict) and isinstance(live, dict) and not schema.atomic_struct:
        out = dict(live)
        for name, value in config.items():
            if value is None:
                continue
            child = schema.child(name)
            out[name] = apply_merge(live[name], value, child) if name in live else _clean(value)
        return out
    if isinstance(config, list) and isinstance(live, list):
        if schema.list_type == "map":
            return _merge_keyed(live, config, schema.list_keys, schema.item(), apply_merge)
        if schema.list_type == "set":
            return list(live) + [copy.deepcopy(v) for v in config if v not in live]
    return _clean(config)


def _clean(value: Any) -> Any:
    """Deep copy without `null` map values (an applied null asserts nothing)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _merge_keyed(
    live: list[Any], patch: list[Any], keys: tuple[str, ...], item_schema: Schema, merge: Any
) -> list[Any]:
    """Merge two lists of maps item by item, matching on `keys`; new items are appended."""

    def key_of(item: Any) -> str:
        return fieldsets.key_element(item, keys) if isinstance(item, dict) else repr(item)

    incoming = {key_of(item): item for item in patch}
    out = [
        merge(item, incoming[key_of(item)], item_schema) if key_of(item) in incoming else item
        for item in live
    ]
    present = {key_of(item) for item in live}
    out.extend(_clean(item) for item in patch if key_of(item) not in present)
    return out


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge, `null` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = merge_patch(out.get(name), value)
    return out


def strategic_merge(target: Any, patch: Any, schema: Schema) -> Any:
    """Strategic merge patch: merge-key lists merge by key, other lists are replaced.

    Supports the directives `$patch: replace|delete`, `$deleteFromPrimitiveList/<field>`,
    and ignores `$setElementOrder/<field>` and `$retainKeys` (ordering hints).
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    out = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if name.startswith("$deleteFromPrimitiveList/"):
            field = name.split("/", 1)[1]
            out[field] = [v for v in out.get(field) or [] if v not in value]
        elif name.startswith("$") or name == "$patch":
            continue
        elif value is None:
            out.pop(name, None)
        elif isinstance(value, list):
            out[name] = _strategic_list(out.get(name), value, schema.child(name))
        elif isinstance(value, dict) and value.get("$patch") == "delete":
            out.pop(name, None)
        else:
            out[name] = strategic_merge(out.get(name), value, schema.child(name))
    return out


def _strategic_list(live: Any, patch: list[Any], schema: Schema) -> list[Any]:
    key = schema.patch_merge_key
    if key is None or not isinstance(live, list):
        return [_strip_directives(v) for v in patch]
    if key == "":
        return list(live) + [v for v in patch if v not in live]
    deleted = {
        str(item.get(key)) for item in patch if isinstance(item, dict) and item.get("$patch")
    }
    kept = [i for i in live if not (isinstance(i, dict) and str(i.get(key)) in deleted)]
    rest = [i for i in patch if not (isinstance(i, dict) and i.get("$patch") == "delete")]
    return _merge_keyed(kept, rest, (key,), schema.item(), strategic_merge)


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    return value


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(operations, list):
        msg = "json patch must be a list of operations"
        raise PatchError(msg)
    doc = copy.deepcopy(target)
    for operation in operations:
        doc = _json_patch_op(doc, operation)
    return doc


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        msg = f"invalid JSON pointer {path!r}"
        raise PatchError(msg)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts[:-1]:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            msg = f"path /{'/'.join(parts)} not found"
            raise PatchError(msg, 422) from exc
    return node


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    node = _parent(doc, parts)
    try:
        return node[int(parts[-1])] if isinstance(node, list) else node[parts[-1]]
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        msg = f"path {path} not found"
        raise PatchError(msg, 422) from exc


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    node = _parent(doc, parts)
    last = parts[-1]
    if isinstance(node, list):
        node.insert(len(node) if last == "-" else int(last), copy.deepcopy(value))
    elif isinstance(node, dict):
        node[last] = copy.deepcopy(value)
    else:
        msg = f"cannot add at {path}"
        raise PatchError(msg, 422)
    return doc


def _remove(doc: Any, path: str) -> Any:
    _get(doc, path)
    parts = _pointer(path)
    node = _parent(doc, parts)
    if isinstance(node, list):
        node.pop(int(parts[-1]))
    else:
        node.pop(parts[-1])
    return doc


def _json_patch_op(doc: Any, operation: dict[str, Any]) -> Any:
    op, path = operation.get("op"), str(operation.get("path", ""))
    if op == "add":
        return _add(doc, path, operation.get("value"))
    if op == "remove":
        return _remove(doc, path)
    if op == "replace":
        return _add(_remove(doc, path), path, operation.get("value"))
    if op in ("move", "copy"):
        value = copy.deepcopy(_get(doc, str(operation.get("from"))))
        if op == "move":
            doc = _remove(doc, str(operation.get("from")))
        return _add(doc, path, value)
    if op == "test":
        if _get(doc, path) != operation.get("value"):
            msg = f"testing value {path} failed"
            raise PatchError(msg, 422)
        return doc
    msg = f"unexpected operation {op!r}"
    raise PatchError(msg)
