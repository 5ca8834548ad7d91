"""Injected failures: transient server errors and RBAC denials, for testing error handling.

Drivers must turn a 429/500/503 into a retryable error and a 403 into a permanent one; these
rules let a test make the fake answer that way for chosen requests, a chosen number of times.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from tests.fakes.kube_apiserver import errors
from tests.fakes.kube_apiserver.registry import ResourceType

DENIED_USER = "system:serviceaccount:tenantctl:tenantctl"
_REASONS = {
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass
class _Rule:
    code: int
    method: str | None
    path_contains: str | None
    remaining: int | None
    retry_after: int | None
    denial: tuple[str, str, str | None] | None = None  # (verb, plural, namespace)


@dataclass(frozen=True)
class Injected:
    """A failure to answer with: Status body, code and extra headers."""

    status: dict[str, Any]
    headers: dict[str, str]


class Faults:
    """The failure rules of one server; thread-safe, consumed as they fire."""

    def __init__(self) -> None:
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()

    def fail(
        self,
        code: int,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        times: int | None = 1,
        retry_after: int | None = None,
    ) -> None:
        """Answer matching requests with `code` (`times=None`: until `clear()`)."""
        rule = _Rule(code, method, path_contains, times, retry_after)
        with self._lock:
            self._rules.append(rule)

    def deny(self, verb: str, resource: str, namespace: str | None = None) -> None:
        """Refuse `verb` on `resource` (plural) like RBAC would, until `clear()`."""
        rule = _Rule(403, None, None, None, None, denial=(verb, resource, namespace))
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def match(
        self, method: str, path: str, target: tuple[ResourceType, str, str, str] | None
    ) -> Injected | None:
        """The failure for this request, if a rule matches; `target` is (type, ns, name, verb)."""
        with self._lock:
            for rule in self._rules:
                injected = _fire(rule, method, path, target)
                if injected is None:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                return injected
        return None


def _fire(
    rule: _Rule, method: str, path: str, target: tuple[ResourceType, str, str, str] | None
) -> Injected | None:
    if rule.denial is not None:
        return _fire_denial(rule.denial, target)
    if rule.method and rule.method != method:
        return None
    if rule.path_contains and rule.path_contains not in path:
        return None
    reason = _REASONS.get(rule.code, "InternalError")
    error = errors.status(rule.code, reason, f"injected failure ({reason})", {})
    headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else {}
    return Injected(error.status, headers)


def _fire_denial(
    denial: tuple[str, str, str | None], target: tuple[ResourceType, str, str, str] | None
) -> Injected | None:
    if target is None:
        return None
    rtype, namespace, name, verb = target
    want_verb, want_resource, want_ns = denial
    if (verb, rtype.plural) != (want_verb, want_resource):
        return None
    if want_ns is not None and namespace != want_ns:
        return None
    error = errors.forbidden(rtype, name, user=DENIED_USER, verb=verb, namespace=namespace)
    return Injected(error.status, {})
