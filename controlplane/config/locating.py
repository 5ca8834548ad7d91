"""Find the line of a field in YAML text, for error messages.

Only called when something is wrong, so the happy path pays for the C parser
alone; this re-reads the text as a node tree that keeps positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import yaml

__all__ = ["Duplicate", "duplicate_keys", "key_identities", "line_of"]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Duplicate:
    """A key written twice in one mapping: its path, its line and the first one's line."""

    path: list[object]
    line: int
    first_line: int


def key_identities(node: yaml.MappingNode) -> list[tuple[str, str]]:
    """The (tag, text) of each scalar key of `node`, merge keys (`<<`) left out."""
    return [
        (key.tag, key.value)
        for key, _ in node.value
        if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE
    ]


def duplicate_keys(text: str) -> list[Duplicate]:
    """Every key repeated within one mapping of `text`, in line order."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except (yaml.YAMLError, ValueError, RecursionError):
        return []
    found: list[Duplicate] = []
    visited: set[int] = set()  # an aliased node is reported once, at its anchor
    stack: list[tuple[yaml.Node, list[object]]] = [(root, [])] if root is not None else []
    while stack:
        node, path = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((item, [*path, index]) for index, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            found.extend(_repeats(node, path))
            stack.extend(
                (value, [*path, key.value])
                for key, value in node.value
                if isinstance(key, yaml.ScalarNode)
            )
    return sorted(found, key=lambda duplicate: duplicate.line)


def _repeats(node: yaml.MappingNode, path: list[object]) -> list[Duplicate]:
    first: dict[tuple[str, str], int] = {}
    repeats: list[Duplicate] = []
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE:
            continue
        line, identity = key.start_mark.line + 1, (key.tag, key.value)
        if identity in first:
            repeats.append(Duplicate([*path, key.value], line, first[identity]))
        else:
            first[identity] = line
    return repeats


def line_of(text: str, path: Sequence[object]) -> int | None:
    """Return the 1-based line of `path` in `text`, or of its nearest existing parent."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except (yaml.YAMLError, ValueError, RecursionError):
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        child = _child(node, part)
        if child is None:
            break
        node, line = child
    return line


def _child(node: yaml.Node | None, part: object) -> tuple[yaml.Node, int] | None:
    if isinstance(node, yaml.MappingNode):
        # The last of repeated keys is the one YAML keeps, so the one a message is about.
        for key, value in reversed(node.value):
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                # A scalar value sits on the key's line; name the key's line either way.
                return value, key.start_mark.line + 1
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        item = node.value[part]
        return item, item.start_mark.line + 1
    return None
