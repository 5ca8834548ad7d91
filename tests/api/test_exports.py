"""Pin the public names of the API package and the service modules it added."""

from __future__ import annotations

import importlib

import pytest

EXPORTS = {
    "controlplane.api": ["create_app"],
    "controlplane.service.tokens": [
        "MAX_TTL",
        "PLATFORM",
        "ROLES",
        "TENANT",
        "Forbidden",
        "Principal",
        "TokenCache",
        "TokenRow",
        "Unauthenticated",
        "acting",
        "audit_request",
        "authenticate",
        "cached",
        "create",
        "list_tokens",
        "revoke",
        "status_of",
    ],
    "controlplane.service.resolving": [
        "Decision",
        "FailureLog",
        "HostIndex",
        "Resolver",
        "RoutingRow",
        "normalise_host",
    ],
    "controlplane.service.metrics": ["CONTENT_TYPE", "Metrics"],
    "controlplane.service.submitting": [
        "Accepted",
        "Submissions",
        "TenantSource",
        "merge_patch",
        "parse_tenant",
    ],
    "tenantctl.remote": [
        "TOKEN_ENV",
        "Remote",
        "RemoteError",
        "config_file",
        "save_token",
        "token_for",
    ],
}


@pytest.mark.parametrize(("module", "names"), EXPORTS.items())
def test_all_is_pinned_and_importable(module: str, names: list[str]) -> None:
    loaded = importlib.import_module(module)
    assert sorted(loaded.__all__) == sorted(names)
    for name in names:
        assert hasattr(loaded, name), f"{module}.{name}"
