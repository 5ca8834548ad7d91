"""Delete, restore, purge and export over HTTP: roles, refusals (each audited), real flows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from controlplane import service
from tests.api.conftest import Api, mint
from tests.conftest import EXAMPLES

YAML = {"Content-Type": "application/yaml"}


def _newest(served: Api, action: str) -> dict[str, object]:
    entries = served.session.store.audit_entries(limit=50)
    return next(e for e in entries if e["action"] == action)


def _refused(served: Api, response: object, status: int, action: str) -> dict[str, object]:
    assert getattr(response, "status_code", None) == status, getattr(response, "text", "")
    body = response.json()  # type: ignore[attr-defined]
    entry = _newest(served, action)
    assert entry["detail"]["request_id"] == body["request_id"]  # type: ignore[index]
    return entry


def test_a_viewer_may_not_delete_and_an_operator_may_not_purge(served: Api) -> None:
    served.record("bluebird-books.yaml")
    viewer = served.client.delete("/v1/tenants/bluebird", headers=served.as_(served.viewer))
    assert _refused(served, viewer, 403, "auth.denied")["detail"]["route"] == (  # type: ignore[index]
        "DELETE /v1/tenants/{tenant_id}"
    )
    assert viewer.json()["exit_code"] == 8
    operator = served.client.post("/v1/tenants/bluebird/purge", headers=served.as_(served.operator))
    entry = _refused(served, operator, 403, "auth.denied")
    assert "needs 'admin'" in str(entry["detail"]["reason"])  # type: ignore[index]
    assert str(entry["actor"]).startswith("token:ops(")
    assert served.session.store.get_tenant("bluebird")["status"] == "active"


def test_refusals_of_the_service_are_409_or_404_and_audited(served: Api) -> None:
    served.record("bluebird-books.yaml")
    served.record("acme-retail.yaml")  # deletion protection on
    operator, admin = served.as_(served.operator), served.as_(served.admin)
    protected = served.client.delete("/v1/tenants/tenant-100", headers=operator)
    entry = _refused(served, protected, 409, "api.tenant.delete")
    assert entry["detail"]["outcome"] == "refused"  # type: ignore[index]
    assert "deletion_protection" in protected.json()["detail"]
    assert _newest(served, "delete.refused")["tenant_id"] == "tenant-100"
    active = served.client.post("/v1/tenants/bluebird/purge", headers=admin)
    assert "only a deleted tenant is purged" in active.json()["detail"]
    assert _refused(served, active, 409, "api.tenant.purge")["actor"] != "anonymous"
    restore = served.client.post("/v1/tenants/bluebird/restore", headers=operator)
    assert (restore.status_code, restore.json()["exit_code"]) == (409, 4)
    missing = served.client.delete("/v1/tenants/nobody", headers=operator)
    assert (missing.status_code, missing.json()["exit_code"]) == (404, 3)
    assert served.session.store.get_tenant("tenant-100")["status"] == "active"


def test_the_tenant_surface_exports_only_its_own_tenant(served: Api) -> None:
    served.record("bluebird-books.yaml")
    served.record("corner-cafe.yaml")
    token = served.as_(mint(served.session, "bb-admins", tenant_id="bluebird"))
    other = served.client.post("/v1/tenant/corner-cafe/export", headers=token)
    assert _refused(served, other, 403, "auth.denied")["tenant_id"] == "corner-cafe"
    platform = served.client.post("/v1/tenants/bluebird/export", headers=token)
    assert _refused(served, platform, 403, "auth.denied")["tenant_id"] == "bluebird"
    admin = served.client.post("/v1/tenant/bluebird/export", headers=served.as_(served.admin))
    _refused(served, admin, 403, "auth.denied")
    unknown = served.client.get("/v1/tenant/bluebird/operations/nope", headers=token)
    assert (unknown.status_code, unknown.json()["exit_code"]) == (404, 3)


def _follow(client: TestClient, response: object, headers: dict[str, str]) -> dict[str, object]:
    assert getattr(response, "status_code", None) == 202, getattr(response, "text", "")
    client.app.state.services.submissions.drain()  # type: ignore[attr-defined]
    url = response.json()["operation_url"]  # type: ignore[attr-defined]
    found: dict[str, object] = client.get(url, headers=headers).json()
    return found


@pytest.mark.slow
def test_export_delete_and_restore_through_the_api(served: Api) -> None:
    client, operator = served.client, served.as_(served.operator)
    created = client.post(
        "/v1/tenants",
        content=(EXAMPLES / "bluebird-books.yaml").read_bytes(),
        headers={**operator, **YAML},
    )
    assert _follow(client, created, operator)["status"] == "succeeded"
    token = served.as_(mint(served.session, "bb-admins", tenant_id="bluebird"))
    exported = client.post("/v1/tenant/bluebird/export", headers=token)
    assert exported.json()["operation_url"].startswith("/v1/tenant/bluebird/operations/")
    operation = _follow(client, exported, token)
    assert (operation["kind"], operation["status"]) == ("export", "succeeded"), operation
    own = client.get("/v1/tenant/bluebird/audit", headers=token).json()["items"]
    assert "api.tenant.export" in {e["action"] for e in own}
    deleted = _follow(client, client.delete("/v1/tenants/bluebird", headers=operator), operator)
    assert (deleted["kind"], deleted["status"]) == ("delete", "succeeded"), deleted
    tenant = client.get("/v1/tenants/bluebird", headers=operator).json()
    assert tenant["status"] == "deleted"
    assert tenant["purge_after"] is not None
    early = client.post("/v1/tenants/bluebird/purge", headers=served.as_(served.admin))
    assert early.status_code == 409
    assert "retention runs until" in early.json()["detail"]
    restored = client.post("/v1/tenants/bluebird/restore", headers=operator)
    assert _follow(client, restored, operator)["status"] == "succeeded"
    assert client.get("/v1/tenants/bluebird", headers=operator).json()["status"] == "active"


def test_tier_change_refusals_name_the_tier_and_are_audited(served: Api) -> None:
    served.record("bluebird-books.yaml")  # standard
    operator = served.as_(served.operator)
    viewer = served.client.post(
        "/v1/tenants/bluebird/upgrade",
        json={"tier": "enterprise"},
        headers=served.as_(served.viewer),
    )
    _refused(served, viewer, 403, "auth.denied")
    gold = served.client.post(
        "/v1/tenants/bluebird/upgrade", json={"tier": "gold"}, headers=operator
    )
    entry = _refused(served, gold, 422, "api.tenant.upgrade")
    assert entry["detail"]["outcome"] == "refused"  # type: ignore[index]
    assert gold.json()["errors"][0]["field"] == "--tier"
    wrong_way = served.client.post(
        "/v1/tenants/bluebird/downgrade", json={"tier": "enterprise"}, headers=operator
    )
    assert (wrong_way.status_code, wrong_way.json()["exit_code"]) == (422, 2)
    assert "use `tenantctl upgrade`" in wrong_way.json()["detail"]
    same = served.client.post(
        "/v1/tenants/bluebird/upgrade", json={"tier": "standard"}, headers=operator
    )
    _refused(served, same, 409, "api.tenant.upgrade")
    missing = served.client.post(
        "/v1/tenants/nobody/upgrade", json={"tier": "premium"}, headers=operator
    )
    assert (missing.status_code, missing.json()["exit_code"]) == (404, 3)
    no_body = served.client.post("/v1/tenants/bluebird/upgrade", headers=operator)
    assert no_body.status_code == 422
    assert served.session.store.get_tenant("bluebird")["tier"] == "standard"


NEW_ROUTES = [
    ("put", "/v1/tenants/bluebird"),
    ("patch", "/v1/tenants/bluebird"),
    ("delete", "/v1/tenants/bluebird"),
    ("post", "/v1/tenants/bluebird/upgrade"),
    ("post", "/v1/tenants/bluebird/downgrade"),
    ("post", "/v1/tenants/bluebird/restore"),
    ("post", "/v1/tenants/bluebird/export"),
    ("post", "/v1/tenants/bluebird/purge"),
    ("post", "/v1/tenant/bluebird/export"),
]


@pytest.mark.parametrize(("method", "path"), NEW_ROUTES)
def test_new_routes_refuse_revoked_and_expired_tokens(served: Api, method: str, path: str) -> None:
    served.record("bluebird-books.yaml")
    scope = {"tenant_id": "bluebird"} if path.startswith("/v1/tenant/") else {"role": "admin"}
    token, row = service.tokens.create(served.session, "short", ttl=timedelta(hours=1), **scope)  # type: ignore[arg-type]
    service.tokens.revoke(served.session, row.id)
    revoked = served.client.request(method, path, headers=served.as_(token), json={"tier": "x"})
    entry = _refused(served, revoked, 401, "auth.denied")
    assert "revoked" in str(entry["detail"]["reason"])  # type: ignore[index]
    expired, _ = service.tokens.create(served.session, "gone", ttl=timedelta(seconds=1), **scope)  # type: ignore[arg-type]
    with served.session.store.engine.begin() as conn:  # expire it without waiting
        conn.execute(
            sa.text("UPDATE api_tokens SET expires_at = :at WHERE name = 'gone'"),
            {"at": datetime.now(UTC) - timedelta(days=1)},
        )
    response = served.client.request(method, path, headers=served.as_(expired), json={})
    assert "expired" in str(_refused(served, response, 401, "auth.denied")["detail"]["reason"])  # type: ignore[index]
    assert served.session.store.get_tenant("bluebird")["status"] == "active"
