"""`PUT`/`PATCH /v1/tenants/{id}`: an apply of the changed spec, validated like create."""

from __future__ import annotations

import json

import pytest

from controlplane.service import reconciling
from tests.api.conftest import Api
from tests.conftest import EXAMPLES

YAML = {"Content-Type": "application/yaml"}
PATCH = {"Content-Type": "application/merge-patch+json"}
BLUEBIRD = (EXAMPLES / "bluebird-books.yaml").read_bytes()


def _last_audit(served: Api) -> dict[str, object]:
    """The newest `api.tenant.update` entry (the operation's own entries may follow it)."""
    entries = served.session.store.audit_entries(limit=50)
    return next(e for e in entries if e["action"] == "api.tenant.update")


def test_put_refuses_another_id_naming_its_line_and_nothing_changes(served: Api) -> None:
    served.record("bluebird-books.yaml")
    before = served.session.store.get_tenant("bluebird")
    renamed = BLUEBIRD.replace(b"id: bluebird", b"id: bluebird2")
    response = served.client.put(
        "/v1/tenants/bluebird", content=renamed, headers={**served.as_(served.operator), **YAML}
    )
    assert response.status_code == 422, response.text
    (problem,) = response.json()["errors"]
    assert (problem["file"], problem["field"]) == ("request.yaml", "tenant.id")
    assert problem["line"] == 1 + BLUEBIRD.decode().splitlines().index("  id: bluebird")
    assert "immutable" in problem["message"]
    assert served.session.store.get_tenant("bluebird") == before
    assert _last_audit(served)["detail"]["outcome"] == "refused"  # type: ignore[index]


def test_put_invalid_spec_is_422_like_create(served: Api) -> None:
    served.record("bluebird-books.yaml")
    bad = BLUEBIRD.replace(b"tier: standard", b"tier: gold")
    response = served.client.put(
        "/v1/tenants/bluebird", content=bad, headers={**served.as_(served.operator), **YAML}
    )
    assert (response.status_code, response.json()["exit_code"]) == (422, 2)
    assert response.json()["errors"][0]["field"] == "tenant.tier"


def test_put_of_an_unrecorded_tenant_is_404(served: Api) -> None:
    response = served.client.put(
        "/v1/tenants/bluebird", content=BLUEBIRD, headers={**served.as_(served.operator), **YAML}
    )
    assert (response.status_code, response.json()["exit_code"]) == (404, 3)


def test_put_claiming_another_tenants_hostname_is_409(served: Api) -> None:
    served.record("bluebird-books.yaml")
    served.record("acme-retail.yaml")
    thief = BLUEBIRD.replace(b"tenant:\n", b"tenant:\n  domains: {custom: [shop.acme.com]}\n", 1)
    response = served.client.put(
        "/v1/tenants/bluebird", content=thief, headers={**served.as_(served.operator), **YAML}
    )
    assert (response.status_code, response.json()["exit_code"]) == (409, 4), response.text
    assert "shop.acme.com" in response.json()["detail"]


def test_patch_problems_name_fields_of_the_merged_file(served: Api) -> None:
    served.record("bluebird-books.yaml")
    body = json.dumps({"tenant": {"region": "mars-1", "colour": "blue"}})
    response = served.client.patch(
        "/v1/tenants/bluebird", content=body, headers={**served.as_(served.operator), **PATCH}
    )
    assert response.status_code == 422, response.text
    fields = {(e["file"], e["field"]) for e in response.json()["errors"]}
    assert {("merged.json", "tenant.region"), ("merged.json", "tenant.colour")} <= fields
    not_a_patch = served.client.patch(
        "/v1/tenants/bluebird", content=b"[1]", headers={**served.as_(served.operator), **PATCH}
    )
    assert not_a_patch.status_code == 422
    wrong_type = served.client.patch(
        "/v1/tenants/bluebird", content=body, headers={**served.as_(served.operator), **YAML}
    )
    assert wrong_type.status_code == 415


def test_viewer_may_not_update(served: Api) -> None:
    served.record("bluebird-books.yaml")
    for method in ("put", "patch"):
        response = served.client.request(
            method,
            "/v1/tenants/bluebird",
            content=b"{}",
            headers={**served.as_(served.viewer), **PATCH},
        )
        assert (response.status_code, response.json()["exit_code"]) == (403, 8)
        entry = served.session.store.audit_entries(limit=1)[0]
        assert (entry["action"], entry["detail"]["route"]) == (
            "auth.denied",
            f"{method.upper()} /v1/tenants/{{tenant_id}}",
        )


@pytest.mark.slow
def test_patch_applies_the_change_and_put_of_the_same_spec_is_unchanged(served: Api) -> None:
    operator = {**served.as_(served.operator)}
    submissions = served.client.app.state.services.submissions  # type: ignore[attr-defined]
    created = served.client.post("/v1/tenants", content=BLUEBIRD, headers={**operator, **YAML})
    assert created.status_code == 202, created.text
    submissions.drain()
    same = served.client.put("/v1/tenants/bluebird", content=BLUEBIRD, headers={**operator, **YAML})
    assert same.status_code == 200, same.text
    assert same.json() == {"tenant_id": "bluebird", "result": "unchanged"}
    assert "Location" not in same.headers
    assert _last_audit(served)["detail"]["outcome"] == "unchanged"  # type: ignore[index]
    patch = {"tenant": {"features": {"ai_agents": True}, "integrations": None}}
    changed = served.client.patch(
        "/v1/tenants/bluebird", content=json.dumps(patch), headers={**operator, **PATCH}
    )
    assert changed.status_code == 202, changed.text
    assert changed.headers["Location"] == changed.json()["operation_url"]
    submissions.drain()
    viewer = served.as_(served.viewer)
    operation = served.client.get(changed.json()["operation_url"], headers=viewer).json()
    assert (operation["kind"], operation["status"]) == ("onboard", "succeeded"), operation
    tenant = served.client.get("/v1/tenants/bluebird", headers=viewer).json()
    assert tenant["spec"]["features"]["ai_agents"] is True
    assert tenant["spec"]["integrations"] == {}
    assert tenant["generation"] == 2
    assert _last_audit(served)["detail"]["outcome"] == "accepted"  # type: ignore[index]


def test_a_patch_of_a_paused_tenant_starts_nothing_and_says_so(served: Api) -> None:
    """Found by schemathesis: the apply of an observed-only tenant starts no operation, which
    the API answered with a 500 ("the operation did not begin")."""
    served.record("bluebird-books.yaml")
    reconciling.pause(served.session, "bluebird", reason="maintenance")
    before = served.session.store.get_tenant("bluebird")
    response = served.client.patch(
        "/v1/tenants/bluebird",
        content=json.dumps({"tenant": {"features": {"ai_agents": True}}}),
        headers={**served.as_(served.operator), **PATCH},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"tenant_id": "bluebird", "result": "unchanged"}
    assert served.session.store.get_tenant("bluebird")["spec"] == before["spec"]
    assert _last_audit(served)["detail"]["outcome"] == "unchanged"  # type: ignore[index]
