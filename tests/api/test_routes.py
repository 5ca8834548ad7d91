"""Platform routes through the TestClient on a real Postgres: bodies, statuses, audit."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import Api
from tests.conftest import EXAMPLES

PROBLEM = "application/problem+json"


def test_healthz_and_readyz_report_store_migrations_and_index(served: Api) -> None:
    assert served.client.get("/healthz").json() == {"status": "ok"}
    ready = served.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["migrations"] == "current"
    assert ready.json()["checks"]["state_store"] == "ok"


def test_list_filters_by_tier_and_status_and_pages(served: Api) -> None:
    served.record("bluebird-books.yaml")
    served.record("corner-cafe.yaml", status="suspended")
    served.record("acme-retail.yaml")
    auth = served.as_(served.viewer)
    standard = served.client.get("/v1/tenants", params={"tier": "standard"}, headers=auth)
    assert [t["id"] for t in standard.json()["items"]] == ["bluebird", "corner-cafe"]
    suspended = served.client.get("/v1/tenants", params={"status": "suspended"}, headers=auth)
    assert [t["id"] for t in suspended.json()["items"]] == ["corner-cafe"]
    first = served.client.get("/v1/tenants", params={"limit": 2}, headers=auth).json()
    assert [t["id"] for t in first["items"]] == ["bluebird", "corner-cafe"]
    second = served.client.get(first["next"], headers=auth).json()
    assert [t["id"] for t in second["items"]] == ["tenant-100"]
    assert second["next"] is None


def test_unknown_tenant_is_a_404_problem_with_exit_code_3(served: Api) -> None:
    response = served.client.get(
        "/v1/tenants/nobody", headers={**served.as_(served.viewer), "X-Request-ID": "req-1"}
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert (body["error"], body["exit_code"], body["request_id"]) == ("NotFoundError", 3, "req-1")
    assert "nobody" in body["detail"]
    assert response.headers["X-Request-ID"] == "req-1"


def test_get_tenant_shows_hosts_and_steps(served: Api) -> None:
    served.record("acme-retail.yaml")
    body = served.client.get("/v1/tenants/tenant-100", headers=served.as_(served.viewer)).json()
    assert body["hosts"] == {"acme.tenants.example.com": "subdomain", "shop.acme.com": "custom"}
    assert body["tier"] == "enterprise"


def test_invalid_yaml_is_422_naming_file_line_and_field_and_audited(served: Api) -> None:
    body = b"tenant:\n  id: x1\n  name: X\n  tier: gold\n  region: us-east-1\n"
    response = served.client.post(
        "/v1/tenants",
        content=body,
        headers={**served.as_(served.operator), "Content-Type": "application/yaml"},
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["exit_code"] == 2
    assert problem["errors"] == [
        {
            "file": "request.yaml",
            "line": 4,
            "field": "tenant.tier",
            "message": "'gold' is not a tier: use one of standard, enterprise, premium",
        }
    ]
    entry = served.session.store.audit_entries(limit=1)[0]
    assert entry["action"] == "api.tenant.create"
    assert entry["actor"].startswith("token:ops(")
    assert entry["detail"]["outcome"] == "refused"
    assert entry["detail"]["request_id"] == problem["request_id"]


def test_json_body_errors_name_lines_of_the_body(served: Api) -> None:
    tenant = {"id": "x2", "name": "X", "tier": "standard", "region": "mars-1", "colour": 1}
    body = json.dumps({"tenant": tenant}, indent=2)  # lines 6 and 7: region and colour
    response = served.client.post(
        "/v1/tenants",
        content=body,
        headers={**served.as_(served.operator), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    lines = {(e["line"], e["field"]) for e in response.json()["errors"]}
    assert (7, "tenant.colour") in lines
    assert (6, "tenant.region") in lines


def test_body_that_is_neither_yaml_nor_json_is_415(served: Api) -> None:
    response = served.client.post(
        "/v1/tenants",
        content=b"x",
        headers={**served.as_(served.operator), "Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    assert response.json()["status"] == 415


def test_recorded_tenant_or_taken_hostname_is_409(served: Api) -> None:
    served.record("acme-retail.yaml")
    again = (EXAMPLES / "acme-retail.yaml").read_bytes()
    headers = {**served.as_(served.operator), "Content-Type": "application/yaml"}
    response = served.client.post("/v1/tenants", content=again, headers=headers)
    assert (response.status_code, response.json()["exit_code"]) == (409, 4)
    thief = again.replace(b"id: tenant-100", b"id: tenant-101").replace(
        b"subdomain: acme", b"subdomain: acme2"
    )
    response = served.client.post("/v1/tenants", content=thief, headers=headers)
    assert response.status_code == 409
    assert "shop.acme.com" in response.json()["detail"]


def test_unknown_operation_is_404(served: Api) -> None:
    response = served.client.get("/v1/operations/nope", headers=served.as_(served.viewer))
    assert (response.status_code, response.json()["exit_code"]) == (404, 3)


def test_bad_query_is_a_422_problem(served: Api) -> None:
    response = served.client.get(
        "/v1/tenants", params={"limit": 0}, headers=served.as_(served.viewer)
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.limit"


JSON = {"Content-Type": "application/json"}
TOKEN = {"name": "x", "role": "viewer"}


# Found by schemathesis: each of these was a 500 or an undocumented 400.
@pytest.mark.parametrize(
    ("method", "path", "options", "field"),
    [
        # Postgres text cannot hold NUL: the list query raised psycopg.DataError.
        ("get", "/v1/tenants", {"params": {"tier": "gold\x00"}}, "query"),
        ("get", "/v1/audit", {"params": {"actor": "\x00"}}, "query"),
        ("get", "/v1/tenants/a%00b", {}, "path"),
        # An entry id past bigint: psycopg's NumericValueOutOfRange.
        ("get", "/v1/audit", {"params": {"before": 2**64}}, "query.before"),
        # A body FastAPI cannot parse (not UTF-8) was a bare 400 with exit code 1.
        ("post", "/v1/tokens", {"content": b"\xff{", "headers": JSON}, "body"),
        # A lifetime past what timedelta holds raised OverflowError.
        ("post", "/v1/tokens", {"json": {**TOKEN, "expires_in": 10**20}}, "body.expires_in"),
    ],
)  # fmt: skip
def test_input_that_crashed_the_api_is_a_422_problem(
    served: Api, method: str, path: str, options: dict[str, object], field: str
) -> None:
    headers = {**served.as_(served.admin), **options.pop("headers", {})}  # type: ignore[dict-item]
    response = served.client.request(method, path, headers=headers, **options)  # type: ignore[arg-type]
    assert response.status_code == 422, response.text
    problem = response.json()
    assert (problem["exit_code"], problem["error"]) == (2, "ConfigError")
    assert problem["errors"][0]["field"] == field
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.slow
def test_create_onboards_in_the_background_and_the_operation_url_follows_it(served: Api) -> None:
    body = json.dumps({"tenant": _bluebird()})
    response = served.client.post(
        "/v1/tenants",
        content=body,
        headers={**served.as_(served.operator), "Content-Type": "application/json"},
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert response.headers["Location"] == accepted["operation_url"]
    served.client.app.state.services.submissions.drain()  # type: ignore[attr-defined]
    operation = served.client.get(
        accepted["operation_url"], headers=served.as_(served.viewer)
    ).json()
    assert operation["status"] == "succeeded", operation
    assert operation["steps"][0]["name"] == "record"
    tenant = served.client.get("/v1/tenants/bluebird", headers=served.as_(served.viewer)).json()
    assert tenant["status"] == "active"
    verify = served.client.get("/v1/tenants/bluebird/verify", headers=served.as_(served.viewer))
    assert verify.json() == {"tenant_id": "bluebird", "healthy": True, "problems": []}
    diff = served.client.get("/v1/tenants/bluebird/diff", headers=served.as_(served.viewer))
    assert diff.json()["in_sync"] is True
    started = served.session.store.audit_entries("bluebird", limit=100)
    actors = {e["actor"] for e in started if e["action"] == "operation.started"}
    assert actors == {e["actor"] for e in started if e["action"] == "api.tenant.create"}


def _bluebird() -> dict[str, object]:
    import yaml  # noqa: PLC0415

    loaded: dict[str, object] = yaml.safe_load((EXAMPLES / "bluebird-books.yaml").read_text())[
        "tenant"
    ]
    return loaded


def test_audit_filters_by_tenant_and_action_and_pages(served: Api) -> None:
    served.record("bluebird-books.yaml")
    for n in range(3):
        served.session.store.audit("test.entry", "bluebird", {"n": n})
    served.session.store.audit("test.entry", None, {"n": 99})
    auth = served.as_(served.viewer)
    page = served.client.get(
        "/v1/audit", params={"tenant": "bluebird", "action": "test.entry", "limit": 2}, headers=auth
    ).json()
    assert [e["detail"]["n"] for e in page["items"]] == [2, 1]
    rest = served.client.get(page["next"], headers=auth).json()
    assert [e["detail"]["n"] for e in rest["items"]] == [0]


def test_openapi_document_has_examples_and_problem_bodies(served: Api) -> None:
    document = served.client.get("/openapi.json").json()
    create = document["paths"]["/v1/tenants"]["post"]
    assert "application/yaml" in create["requestBody"]["content"]
    assert create["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "Problem"
    )
    assert document["components"]["schemas"]["Problem"]["examples"][0]["exit_code"] == 2


def test_suspend_and_resume_refusals(served: Api) -> None:
    served.record("bluebird-books.yaml")
    operator = served.as_(served.operator)
    missing = served.client.post("/v1/tenants/nobody/suspend", headers=operator)
    assert (missing.status_code, missing.json()["exit_code"]) == (404, 3)
    active = served.client.post("/v1/tenants/bluebird/resume", headers=operator)
    assert (active.status_code, active.json()["exit_code"]) == (409, 4)
    entry = served.session.store.audit_entries("bluebird", limit=1)[0]
    assert (entry["action"], entry["detail"]["outcome"]) == ("api.tenant.resume", "refused")
    viewer = served.client.post("/v1/tenants/bluebird/suspend", headers=served.as_(served.viewer))
    assert viewer.status_code == 403


@pytest.mark.slow
def test_suspend_then_resume_through_the_api(served: Api) -> None:
    created = served.client.post(
        "/v1/tenants",
        content=(EXAMPLES / "bluebird-books.yaml").read_bytes(),
        headers={**served.as_(served.operator), "Content-Type": "application/yaml"},
    )
    assert created.status_code == 202, created.text
    submissions = served.client.app.state.services.submissions  # type: ignore[attr-defined]
    submissions.drain()
    viewer = served.as_(served.viewer)
    for action, status in (("suspend", "suspended"), ("resume", "active")):
        response = served.client.post(
            f"/v1/tenants/bluebird/{action}", headers=served.as_(served.operator)
        )
        assert response.status_code == 202, response.text
        submissions.drain()
        operation = served.client.get(response.json()["operation_url"], headers=viewer).json()
        assert (operation["kind"], operation["status"]) == (action, "succeeded"), operation
        tenant = served.client.get("/v1/tenants/bluebird", headers=viewer).json()
        assert tenant["status"] == status
