"""Label and field selectors, parsed like k8s.io/apimachinery `labels.Parse`.

Label terms are ANDed: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
`k>5`, `k<5`. Field selectors support `metadata.name` and `metadata.namespace`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, str]], bool]

_SET_TERM = re.compile(r"^\s*([^\s!=<>]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_CMP_TERM = re.compile(r"^\s*([^\s!=<>]+)\s*(==|!=|=|>|<)\s*([^\s]*)\s*$")
_EXISTS_TERM = re.compile(r"^\s*(!?)\s*([^\s!=<>(),]+)\s*$")
FIELDS = {"metadata.name": ("name",), "metadata.namespace": ("namespace",)}


class SelectorError(ValueError):
    """An unparsable selector (the server answers 400 BadRequest)."""


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()]


def _term(term: str) -> Predicate:
    if match := _SET_TERM.match(term):
        key, op, raw = match.groups()
        values = {v.strip() for v in raw.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _CMP_TERM.match(term):
        return _comparison(*match.groups())
    if match := _EXISTS_TERM.match(term):
        negate, key = match.groups()
        return (lambda labels: key not in labels) if negate else (lambda labels: key in labels)
    msg = f"unable to parse requirement: {term!r}"
    raise SelectorError(msg)


def _comparison(key: str, op: str, value: str) -> Predicate:
    if op in ("=", "=="):
        return lambda labels: labels.get(key) == value
    if op == "!=":
        return lambda labels: labels.get(key) != value
    try:
        bound = int(value)
    except ValueError as exc:
        msg = f"for 'Gt', 'Lt' operators, the value must be an integer: {value!r}"
        raise SelectorError(msg) from exc

    def compare(labels: dict[str, str]) -> bool:
        raw = labels.get(key)
        if raw is None or not raw.lstrip("-").isdigit():
            return False
        return int(raw) > bound if op == ">" else int(raw) < bound

    return compare


def parse_labels(selector: str | None) -> Predicate:
    """A predicate over a label map; an empty selector matches everything."""
    terms = [_term(t) for t in _split_terms(selector or "")]
    return lambda labels: all(term(labels) for term in terms)


def parse_fields(selector: str | None) -> Callable[[dict[str, Any]], bool]:
    """A predicate over an object for `metadata.name` / `metadata.namespace` selectors."""
    checks: list[Callable[[dict[str, Any]], bool]] = []
    for term in _split_terms(selector or ""):
        match = _CMP_TERM.match(term)
        if not match or match.group(2) in (">", "<"):
            msg = f"invalid field selector: {term!r}"
            raise SelectorError(msg)
        name, op, value = match.groups()
        if name not in FIELDS:
            msg = f'field label not supported: "{name}"'
            raise SelectorError(msg)
        checks.append(_field_check(FIELDS[name][0], op, value))
    return lambda obj: all(check(obj) for check in checks)


def _field_check(attr: str, op: str, value: str) -> Callable[[dict[str, Any]], bool]:
    def check(obj: dict[str, Any]) -> bool:
        actual = str((obj.get("metadata") or {}).get(attr, ""))
        return (actual == value) if op in ("=", "==") else (actual != value)

    return check
