"""Field-level differences between two JSON-like documents (for plans and diffs)."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["changed_fields"]


def changed_fields(old: object, new: object, prefix: str = "") -> list[str]:
    """Dotted paths whose values differ between `old` and `new`, sorted."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        paths: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.extend(changed_fields(old.get(key), new.get(key), path))
        return paths
    return [] if old == new else [prefix or "."]
