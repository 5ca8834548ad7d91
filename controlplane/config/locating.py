"""Find the line of a field in YAML text, for error messages.

Only called when something is wrong, so the happy path pays for the C parser
alone; this re-reads the text as a node tree that keeps positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml

__all__ = ["line_of"]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
        for key, value in node.value:
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
