"""What the Kubernetes steps and backends exchange: a scope, changes, field differences.

The steps build a `Scope`, the backends (`drivers.kubernetes`: live and render) return
`ObjectChange`s and `FieldDifference`s; both sides import them from here, so the step
outputs are typed and a backend satisfies the steps' Protocol without importing them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["FieldDifference", "ObjectChange", "Scope"]


@dataclass(frozen=True)
class Scope:
    """What one converge owns: objects on `cluster` carrying all of `selector`."""

    cluster: str
    tenant_id: str
    component: str
    selector: Mapping[str, str]
    kinds: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ObjectChange:
    """A write made (or, from `differences`, needed): create, update, delete or noop."""

    action: str
    target: str
    detail: str = ""


@dataclass(frozen=True)
class FieldDifference:
    """One field whose live value differs from the desired one.

    `owner` names the other field managers that own the live value. An imperative
    edit (an Update: `kubectl edit/patch/replace`) is drift, which apply reverts;
    a value another *applier* owns (`contested`) is a conflict between two declarative
    owners, which apply reports unless forced. `added` marks a field nobody asked us
    for in an object that carries isolation (a NetworkPolicy rule, a quota scope...):
    apply removes it.
    """

    target: str
    path: str
    want: str
    have: str
    owner: str = ""
    contested: bool = False
    added: bool = False

    def __str__(self) -> str:
        by = f" (changed by {self.owner})" if self.owner else ""
        return f"{self.target} {self.path}: want {self.want}, have {self.have}{by}"
