"""Every response of a table of requests is documented and matches its OpenAPI schema.

Each route, with each status it can answer here, validated against `/openapi.json`:
the known outcomes, beside the generated ones of `test_schemathesis`.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.api.conftest import Api, mint
from tests.conftest import EXAMPLES

DOC = "urn:tenantctl:openapi"
YAML = {"Content-Type": "application/yaml"}


def _validator(document: dict[str, Any], template: str, method: str, status: int) -> OAS31Validator:
    responses = document["paths"][template][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {template}: HTTP {status} not documented"
    content = responses[str(status)].get("content", {})
    media = (
        "application/problem+json" if "application/problem+json" in content else "application/json"
    )
    schema = content[media]["schema"]
    registry: Registry[Any] = Registry().with_resource(
        DOC, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return OAS31Validator(
        {**schema, "$id": DOC} if "$ref" not in schema else {"$ref": DOC + schema["$ref"]},
        registry=registry,
    )


def _template(document: dict[str, Any], path: str) -> str:
    """The documented path template that `path` (query string and all) matches."""
    bare = path.split("?", maxsplit=1)[0]
    for template in map(str, document["paths"]):
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), bare):
            return template
    msg = f"{path} matches no documented path"
    raise AssertionError(msg)


def _calls(served: Api, token: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, request options) for every route and several outcomes."""
    viewer, operator = served.as_(served.viewer), served.as_(served.operator)
    bluebird = (EXAMPLES / "bluebird-books.yaml").read_bytes()
    nobody = b"tenant: {id: nobody, name: N, tier: standard, region: us-east-1}"
    gold = {"tenant": {"tier": "gold"}}
    return [
        ("get", "/healthz", {}),
        ("get", "/readyz", {}),
        ("get", "/v1/tenants", {"headers": viewer}),
        ("get", "/v1/tenants?limit=1", {"headers": viewer}),
        ("get", "/v1/tenants?limit=0", {"headers": viewer}),
        ("get", "/v1/tenants", {}),
        ("get", "/v1/tenants", {"headers": token}),
        ("get", "/v1/tenants/tenant-100", {"headers": viewer}),
        ("get", "/v1/tenants/nobody", {"headers": viewer}),
        ("post", "/v1/tenants", {"headers": {**operator, **YAML}, "content": b"tenant: {id: 1}"}),
        (
            "post",
            "/v1/tenants",
            {"headers": {**operator, "Content-Type": "text/plain"}, "content": b"x"},
        ),
        ("post", "/v1/tenants", {"headers": {**viewer, **YAML}, "content": bluebird}),
        (
            "post",
            "/v1/tenants",
            {
                "headers": {**operator, **YAML},
                "content": (EXAMPLES / "acme-retail.yaml").read_bytes(),
            },
        ),
        ("put", "/v1/tenants/tenant-100", {"headers": {**operator, **YAML}, "content": bluebird}),
        ("put", "/v1/tenants/nobody", {"headers": {**operator, **YAML}, "content": nobody}),
        ("put", "/v1/tenants/tenant-100", {"headers": {**viewer, **YAML}, "content": bluebird}),
        ("patch", "/v1/tenants/tenant-100", {"headers": operator, "json": gold}),
        ("patch", "/v1/tenants/tenant-100", {"headers": {**operator, **YAML}, "content": b"x"}),
        ("post", "/v1/tenants/nobody/suspend", {"headers": operator}),
        ("delete", "/v1/tenants/tenant-100", {"headers": operator}),
        ("post", "/v1/tenants/tenant-100/upgrade", {"headers": operator, "json": {"tier": "x"}}),
        ("post", "/v1/tenants/tenant-100/downgrade", {"headers": operator, "json": {}}),
        ("delete", "/v1/tenants/nobody", {"headers": operator}),
        ("post", "/v1/tenants/tenant-100/purge", {"headers": served.as_(served.admin)}),
        ("post", "/v1/tenants/tenant-100/purge", {"headers": operator}),
        ("post", "/v1/tenants/tenant-100/restore", {"headers": operator}),
        ("post", "/v1/tenants/nobody/export", {"headers": operator}),
        ("post", "/v1/tenant/tenant-100/export", {"headers": token}),
        ("get", "/v1/tenant/bluebird/operations/nope", {"headers": token}),
        ("post", "/v1/tenants/tenant-100/resume", {"headers": operator}),
        ("get", "/v1/tenants/tenant-100/diff", {"headers": viewer}),
        ("get", "/v1/tenants/nobody/diff", {"headers": viewer}),
        ("get", "/v1/tenants/tenant-100/verify", {"headers": viewer}),
        ("get", "/v1/tenants/nobody/verify", {"headers": viewer}),
        ("get", "/v1/operations/nope", {"headers": viewer}),
        ("get", "/v1/purge-candidates", {"headers": viewer}),
        ("get", "/v1/purge-candidates?tenant=corner-cafe&tenant=tenant-100", {"headers": viewer}),
        ("get", "/v1/purge-candidates?tenant=nobody", {"headers": viewer}),
        ("post", "/v1/purge-retired", {"headers": served.as_(served.admin)}),
        ("post", "/v1/purge-retired", {"headers": operator}),
        ("get", "/v1/audit?limit=2", {"headers": viewer}),
        ("get", "/v1/audit?before=0", {"headers": viewer}),
        ("get", "/v1/resolve?host=shop.acme.com", {"headers": viewer}),
        ("get", "/v1/resolve?host=nobody.example", {"headers": viewer}),
        ("get", "/v1/resolve?host=bluebird.tenants.example.com", {"headers": viewer}),
        ("get", "/v1/resolve?host=cornercafe.tenants.example.com", {"headers": viewer}),
        ("get", "/v1/resolve?host=a%20b", {"headers": viewer}),
        ("get", "/v1/resolve", {"headers": viewer}),
        ("get", "/v1/tenant/bluebird", {"headers": token}),
        ("get", "/v1/tenant/tenant-100", {"headers": token}),
        ("get", "/v1/tenant/bluebird/operations", {"headers": token}),
        ("get", "/v1/tenant/bluebird/audit", {"headers": token}),
        ("get", "/v1/tenant/bluebird/audit?limit=0", {"headers": token}),
        ("get", "/v1/tokens", {"headers": served.as_(served.admin)}),
        ("get", "/v1/tokens", {"headers": operator}),
        (
            "post",
            "/v1/tokens",
            {"headers": served.as_(served.admin), "json": {"name": "n", "role": "viewer"}},
        ),
        ("post", "/v1/tokens", {"headers": served.as_(served.admin), "json": {"name": "n"}}),
        ("post", "/v1/tokens", {"headers": served.as_(served.admin), "json": {"name": ""}}),
        ("delete", "/v1/tokens/tok_nope", {"headers": served.as_(served.admin)}),
    ]


def test_the_document_is_valid_openapi(served: Api) -> None:
    validate(served.client.get("/openapi.json").json())


def test_every_response_is_documented_and_matches_its_schema(served: Api) -> None:
    served.record("acme-retail.yaml")
    served.record("bluebird-books.yaml", status="suspended")
    served.record("corner-cafe.yaml", status="deleted")
    token = served.as_(mint(served.session, "bb", tenant_id="bluebird"))
    document = served.client.get("/openapi.json").json()
    seen: set[tuple[str, int]] = set()
    calls = _calls(served, token)
    for method, path, options in calls:
        template = _template(document, path)
        response = served.client.request(method, path, **options)
        assert response.status_code < 500, (path, response.text)
        if template == "/readyz" or response.headers["content-type"].startswith("application/"):
            errors = list(
                _validator(document, template, method, response.status_code).iter_errors(
                    response.json()
                )
            )
            assert not errors, (method, path, response.status_code, errors[0].message)
        seen.add((template, response.status_code))
    assert {s for _, s in seen} >= {200, 401, 403, 404, 409, 410, 415, 422}
    documented = {(t, m) for t, ops in document["paths"].items() for m in ops}
    called = {(_template(document, path), method) for method, path, _ in calls}
    assert documented - called == {("/metrics", "get")}


@pytest.mark.parametrize("path", ["/v1/tenants", "/v1/resolve?host=x.example", "/v1/audit"])
def test_problems_are_documented_as_problem_json(served: Api, path: str) -> None:
    document = served.client.get("/openapi.json").json()
    template = path.split("?", maxsplit=1)[0]
    content = document["paths"][template]["get"]["responses"]["401"]["content"]
    assert "application/problem+json" in content
