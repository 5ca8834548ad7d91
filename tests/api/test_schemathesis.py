"""schemathesis against the OpenAPI document: every operation, bounded and deterministic.

Each operation gets valid and invalid input generated from its own schema (and its
documented examples), sent in-process to the app over the per-test database with a real
admin token (on the tenant surface: a tenant token of a recorded tenant); every response
must be no server error and must match the document (status code, content type, body).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.specs.openapi import checks as openapi_checks

from tests.api.conftest import Api, mint

EXAMPLES_PER_OPERATION = 15
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
]
# Deterministic and bounded; nothing written to a `.hypothesis` folder in the repo.
FUZZ = hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)


def _strategy(operation: schemathesis.APIOperation, tenant_id: str) -> st.SearchStrategy[Any]:
    """Valid and invalid cases, the documented examples, and cases naming a real tenant."""
    found = [
        operation.as_strategy(),
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
        *operation.get_strategies_from_examples(),
    ]
    if "{tenant_id}" in operation.path:
        found.append(operation.as_strategy(path_parameters={"tenant_id": tenant_id}))
    return st.one_of(found)


def _sender(served: Api, headers: dict[str, str]) -> Callable[[schemathesis.Case], None]:
    """Send a case through the served app's client and check its response."""

    def send(case: schemathesis.Case) -> None:
        options = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
        body = options.pop("data", None)
        response = served.client.request(
            options.pop("method"),
            options.pop("url"),
            headers=options.pop("headers"),
            params=options.pop("params", None),
            json=options.pop("json", None),
            content=body.encode() if isinstance(body, str) else body,
        )
        assert not any(options.values()), f"unsent request options {options}"
        case.validate_response(response, checks=CHECKS)

    return send


@pytest.mark.slow
def test_no_operation_answers_a_server_error_or_breaks_its_schema(served: Api) -> None:
    tenant_id = served.record("bluebird-books.yaml")
    platform = served.as_(served.admin)
    tenant = served.as_(mint(served.session, "fuzz-tenant", tenant_id=tenant_id))
    document = served.client.get("/openapi.json").json()
    operations = [op.ok() for op in schemathesis.openapi.from_dict(document).get_all_operations()]
    assert len(operations) == sum(map(len, document["paths"].values()))  # none left out
    failures: list[str] = []
    for operation in operations:
        send = _sender(served, tenant if operation.path.startswith("/v1/tenant/") else platform)
        run = FUZZ(hypothesis.given(_strategy(operation, tenant_id))(send))
        try:
            run()
        except (Exception, schemathesis.errors.FailureGroup) as exc:
            # Every operation's failures, not only the first one's.
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
