"""Read a YAML file safely: size and encoding limits, alias bombs, duplicate keys.

PyYAML silently keeps the last of two equal keys in one mapping (`tier: premium` then
`tier: standard` reads as standard); we refuse that. The check rides on construction
(a set per mapping), and only when it fires is the text re-read for field paths.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from controlplane.config import locating
from controlplane.errors import ConfigError, SourceLocation

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

__all__ = ["Problems", "join", "parse", "read"]

Problems = list[tuple[SourceLocation, str]]

_MAX_BYTES = 1_000_000
_MAX_NODES = 100_000
_ODD_KEY = re.compile(r"[\s.\[\]'\"]")  # keys shown quoted in a field path


class _Loader(_BaseLoader):
    """The safe loader, noting whether any mapping repeats a key."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.repeats_a_key = False

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        if not self.repeats_a_key and isinstance(node, yaml.MappingNode):
            keys = locating.key_identities(node)
            self.repeats_a_key = len(set(keys)) != len(keys)
        return super().construct_mapping(node, deep=deep)


def join(loc: tuple[object, ...] | list[object]) -> str:
    """Dotted field path of a location: `("tenant", "domains", "custom", 0)` -> `...custom[0]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = repr(part) if part == "" or _ODD_KEY.search(str(part)) else str(part)
            out += f".{name}" if out else name
    return out


def read(path: Path) -> str:
    """Return the text of `path`: UTF-8, at most 1 MB.

    Raises:
        ConfigError: naming the file when it cannot be read or breaks a limit.
    """
    where = SourceLocation(str(path), None, "")
    try:
        with path.open(encoding="utf-8") as handle:
            text = handle.read(_MAX_BYTES + 1)
    except UnicodeDecodeError as exc:
        raise ConfigError([(where, "file is not UTF-8 text")]) from exc
    except OSError as exc:
        raise ConfigError([(where, f"cannot read: {exc.strerror}")]) from exc
    if len(text) > _MAX_BYTES:
        raise ConfigError([(where, "file is larger than 1 MB")])
    return text


def parse(text: str, file: str) -> tuple[object, Problems]:
    """Return the document of `text` and its duplicate-key problems (the last value kept).

    Raises:
        ConfigError: the text is not YAML, or its aliases expand beyond the node cap.
    """
    if "&" in text:
        _refuse_alias_bombs(text, file)
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        # At the end of the text libyaml may point one line past the last.
        line = min(mark.line + 1, text.count("\n") + 1) if mark is not None else None
        problem = f"invalid YAML: {exc.problem}"
        raise ConfigError([(SourceLocation(file, line, ""), problem)]) from exc
    except (yaml.YAMLError, ValueError, TypeError, RecursionError, OverflowError) as exc:
        raise ConfigError([(SourceLocation(file, None, ""), f"invalid YAML: {exc}")]) from exc
    finally:
        loader.dispose()
    return data, (_duplicates(text, file) if loader.repeats_a_key else [])


def _duplicates(text: str, file: str) -> Problems:
    problems: Problems = []
    for duplicate in locating.duplicate_keys(text):
        field = join(duplicate.path)
        message = (
            f"duplicate key '{duplicate.path[-1]}' (first at line {duplicate.first_line}): "
            "YAML would keep only the last value; remove one"
        )
        problems.append((SourceLocation(file, duplicate.line, field), message))
    return problems


def _refuse_alias_bombs(text: str, file: str) -> None:
    """Anchors and aliases may expand exponentially ("billion laughs"): cap the expansion."""
    try:
        root = yaml.compose(text, Loader=_BaseLoader)
    except (yaml.YAMLError, ValueError, RecursionError):
        return  # the real parse reports it with a line
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) not in sizes:
            sizes[id(node)] = 0  # cycles count once
            children = node.value if isinstance(node.value, list) else []
            flat = [n for c in children for n in (c if isinstance(c, tuple) else (c,))]
            sizes[id(node)] = 1 + sum(size(child) for child in flat)
        return sizes[id(node)]

    if root is not None and size(root) > _MAX_NODES:
        problem = f"YAML aliases expand to more than {_MAX_NODES} nodes; refusing the file"
        raise ConfigError([(SourceLocation(file, None, ""), problem)])
