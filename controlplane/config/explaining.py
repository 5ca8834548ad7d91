"""Turn pydantic validation errors into `file:line: field: message` problems.

pydantic's own words name no value ("Input should be a valid string") and mark a bad
mapping key with a `[key]` location part; here each message shows the value it refused,
a bad key is named at the key (and what sits under it is not reported again).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from controlplane.config import locating, parsing
from controlplane.errors import SourceLocation

__all__ = ["problems_of"]

_KEY = "[key]"
_SHOWN = 60  # characters of a refused value shown in a message


def problems_of(
    exc: ValidationError, text: str, file: str, *, model: type[BaseModel], prefix: Sequence[str]
) -> parsing.Problems:
    """Each error of `exc` (raised validating `model` at `prefix` of `text`) as a problem."""
    errors = exc.errors()
    bad_keys = [tuple(e["loc"][:-1]) for e in errors if e["loc"][-1:] == (_KEY,)]
    problems: parsing.Problems = []
    for error in errors:
        loc = tuple(error["loc"])
        key_error = loc[-1:] == (_KEY,)
        where = loc[:-1] if key_error else loc
        if not key_error and any(where[: len(bad)] == bad for bad in bad_keys):
            continue  # the value of a refused key: the key's problem says it all
        path = (*prefix, *where)
        location = SourceLocation(file, locating.line_of(text, path), parsing.join(path))
        problems.append((location, _message(error, model)))
    return problems


def _message(error: Any, model: type[BaseModel]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, error["loc"][:-1])
        return f"unknown key (allowed here: {', '.join(allowed)})" if allowed else "unknown key"
    if kind == "missing":
        return "required field is missing"
    text = str(error["msg"])
    if kind == "value_error":
        return text.removeprefix("Value error, ")  # our validators name the value themselves
    return f"{text} (got {_show(error['input'])})"


def _show(value: object) -> str:
    """A short rendering of a refused value: `'text'`, `5`, `[1, 2]`, `null`."""
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _allowed_keys(model: type[BaseModel], loc: Sequence[object]) -> list[str]:
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = field.annotation
        # Unwrap `X | None` to X.
        for arg in getattr(current, "__args__", ()):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                current = arg
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []
