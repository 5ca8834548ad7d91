"""managedFields bookkeeping: who owns which field, apply conflicts, and pruning.

The rules follow server-side apply (kubernetes.io/docs/reference/using-api/server-side-apply):
- an applier's set is exactly the fields of its last applied configuration;
- applying a field another manager owns with a different value conflicts, unless forced,
  in which case ownership moves to the applier; equal values give shared ownership;
- a field the applier no longer applies is removed when nobody else owns it;
- Update writes (POST, PUT, non-apply PATCH) never conflict and take the fields they change;
- an entry's `time` changes only when its set or the values it owns change.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.kube_apiserver import errors, fieldsets, patching
from tests.fakes.kube_apiserver.fieldsets import Path
from tests.fakes.kube_apiserver.schemas import Schema


@dataclass
class Owner:
    """One managedFields entry, decoded."""

    manager: str
    operation: str
    api_version: str
    time: str
    paths: set[Path] = field(default_factory=set)
    subresource: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity: Update entries are also distinguished by apiVersion."""
        version = self.api_version if self.operation == "Update" else ""
        return (self.manager, self.operation, version, self.subresource)

    def describe(self) -> str:
        """How conflict messages name this owner (apiserver `printManager`)."""
        if self.operation == "Update":
            return f'"{self.manager}" using {self.api_version} at {self.time}'
        return f'"{self.manager}"'


@dataclass(frozen=True)
class Write:
    """Who writes, and how the object is decomposed into fields."""

    manager: str
    api_version: str
    schema: Schema
    now: str
    skip_status: bool


def decode(obj: dict[str, Any] | None) -> list[Owner]:
    """The owners recorded in `obj.metadata.managedFields`."""
    entries = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    return [
        Owner(
            manager=e.get("manager", ""),
            operation=e.get("operation", "Update"),
            api_version=e.get("apiVersion", ""),
            time=e.get("time", ""),
            paths=fieldsets.from_fields_v1(e.get("fieldsV1") or {}),
            subresource=e.get("subresource", ""),
        )
        for e in entries
    ]


def encode(owners: list[Owner]) -> list[dict[str, Any]]:
    """managedFields entries, empty sets dropped, sorted like the apiserver sorts them."""
    kept = sorted(
        (o for o in owners if o.paths),
        key=lambda o: (o.operation, o.time, o.manager, o.api_version),
    )
    entries: list[dict[str, Any]] = []
    for owner in kept:
        entry: dict[str, Any] = {
            "manager": owner.manager,
            "operation": owner.operation,
            "apiVersion": owner.api_version,
            "time": owner.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fieldsets.to_fields_v1(owner.paths),
        }
        if owner.subresource:
            entry["subresource"] = owner.subresource
        entries.append(entry)
    return entries


def _find(owners: list[Owner], key: tuple[str, str, str, str]) -> Owner | None:
    return next((o for o in owners if o.key == key), None)


def apply(live: dict[str, Any] | None, config: dict[str, Any], *, write: Write, force: bool) -> Any:
    """Server-side apply `config` over `live`; returns the merged object with managedFields.

    Raises:
        ApiError: 409 listing the conflicting fields and their managers (unless `force`).
    """
    base = copy.deepcopy(live) if live else {}
    owners = decode(live)
    applied = fieldsets.object_fields(config, write.schema, skip_status=write.skip_status)
    key = (write.manager, "Apply", "", "")
    me = _find(owners, key) or Owner(write.manager, "Apply", write.api_version, write.now)
    others = [o for o in owners if o.key != key]
    conflicts = _conflicts(base, config, applied, others)
    if conflicts and not force:
        raise errors.apply_conflict(
            [(o.describe(), fieldsets.describe(p)) for o, p in conflicts],
            {o.describe(): o.describe() for o, _ in conflicts},
        )
    for owner, path in conflicts:
        owner.paths.discard(path)
    merged = patching.apply_merge(base, _without_meta(config, write.skip_status), write.schema)
    _prune(merged, me.paths - set(applied), others, set(applied))
    previous = {o.key: (set(o.paths), o.time) for o in owners}
    me.paths = set(applied)
    me.api_version = write.api_version
    if me not in owners:
        owners.append(me)
    _finish(live, merged, owners, previous, write.now)
    return merged


def _without_meta(config: dict[str, Any], skip_status: bool) -> dict[str, Any]:
    out = dict(config)
    meta = {
        k: v
        for k, v in (config.get("metadata") or {}).items()
        if k not in fieldsets.SERVER_METADATA or k in ("name", "namespace")
    }
    out["metadata"] = meta
    if skip_status:
        out.pop("status", None)
    return out


def _conflicts(
    live: dict[str, Any], config: dict[str, Any], applied: dict[Path, bool], others: list[Owner]
) -> list[tuple[Owner, Path]]:
    found: list[tuple[Owner, Path]] = []
    for owner in others:
        for path in sorted(owner.paths & set(applied)):
            if not applied[path]:
                continue
            present, current = fieldsets.lookup(live, path)
            if present and current != fieldsets.lookup(config, path)[1]:
                found.append((owner, path))
    return found


def _prune(obj: dict[str, Any], dropped: set[Path], others: list[Owner], kept: set[Path]) -> None:
    """Remove fields the applier stopped applying, unless someone else still owns them."""
    owned = set().union(*(o.paths for o in others)) if others else set()
    for path in sorted(dropped, key=len):  # a whole item first, then its (gone) fields
        if path in owned or fieldsets.has_descendant(owned, path):
            continue
        if fieldsets.has_descendant(kept, path):
            continue
        fieldsets.remove(obj, path)


def update(old: dict[str, Any] | None, new: dict[str, Any], *, write: Write) -> None:
    """Record an Update by `write.manager`: it takes every field it changed (in place)."""
    owners = decode(old)
    previous = {o.key: (set(o.paths), o.time) for o in owners}
    before = (
        fieldsets.object_fields(old, write.schema, skip_status=write.skip_status) if old else {}
    )
    after = fieldsets.object_fields(new, write.schema, skip_status=write.skip_status)
    changed = {
        path
        for path, leaf in after.items()
        if path not in before
        or (leaf and fieldsets.lookup(old, path)[1] != fieldsets.lookup(new, path)[1])
    }
    changed |= {
        path
        for path in fieldsets.map_nodes(new, write.schema)
        if path[0] != "f:status" or not write.skip_status
        if not fieldsets.lookup(old, path)[0]
    }
    for owner in owners:
        owner.paths -= changed
    key = (write.manager, "Update", write.api_version, "")
    me = _find(owners, key)
    if me is None and changed:
        me = Owner(write.manager, "Update", write.api_version, write.now)
        owners.append(me)
    if me is not None:
        me.paths |= changed
    _finish(old, new, owners, previous, write.now)


def _finish(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    owners: list[Owner],
    previous: dict[tuple[str, str, str, str], tuple[set[Path], str]],
    now: str,
) -> None:
    """Drop owned paths that vanished, refresh times of owners whose fields changed."""
    for owner in owners:
        owner.paths = {p for p in owner.paths if fieldsets.lookup(new, p)[0]}
        before = previous.get(owner.key)
        if before is None or before[0] != owner.paths or _values_changed(old, new, owner.paths):
            owner.time = now
        else:
            owner.time = before[1]
    new.setdefault("metadata", {})["managedFields"] = encode(owners)
    if not new["metadata"]["managedFields"]:
        del new["metadata"]["managedFields"]


def _values_changed(old: dict[str, Any] | None, new: dict[str, Any], paths: set[Path]) -> bool:
    return any(fieldsets.lookup(old, p) != fieldsets.lookup(new, p) for p in paths)
