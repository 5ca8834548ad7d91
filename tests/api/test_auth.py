"""Two auth surfaces: every refusal has the right status and an audit entry."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from controlplane import service
from controlplane.service import tokens
from controlplane.state import tokens as stored
from tenantctl.main import app
from tests.api.conftest import Api, eventually, mint

YAML = {"Content-Type": "application/yaml"}


def _denial(served: Api) -> dict[str, object]:
    entry = served.session.store.audit_entries(limit=1)[0]
    assert entry["action"] == "auth.denied"
    return entry


def _refused(served: Api, response: object, status: int) -> dict[str, object]:
    assert getattr(response, "status_code", None) == status, getattr(response, "text", "")
    body = response.json()  # type: ignore[attr-defined]
    entry = _denial(served)
    assert entry["detail"]["request_id"] == body["request_id"]  # type: ignore[index]
    assert entry["detail"]["status"] == status  # type: ignore[index]
    return entry


def test_no_token_is_401_audited_as_anonymous(served: Api) -> None:
    entry = _refused(served, served.client.get("/v1/tenants"), 401)
    assert entry["actor"] == "anonymous"
    assert entry["detail"]["route"] == "GET /v1/tenants"  # type: ignore[index]


def test_viewer_trying_to_mutate_is_403_and_audited(served: Api) -> None:
    response = served.client.post(
        "/v1/tenants", content=b"tenant: {}", headers={**served.as_(served.viewer), **YAML}
    )
    entry = _refused(served, response, 403)
    assert str(entry["actor"]).startswith("token:watcher(")
    assert "needs 'operator'" in str(entry["detail"]["reason"])  # type: ignore[index]
    assert response.json()["exit_code"] == 8


def test_tenant_token_on_a_platform_route_is_403(served: Api) -> None:
    tenant_id = served.record("bluebird-books.yaml")
    token = mint(served.session, "bb-admins", tenant_id=tenant_id)
    response = served.client.get(f"/v1/tenants/{tenant_id}", headers=served.as_(token))
    entry = _refused(served, response, 403)
    assert entry["tenant_id"] == tenant_id
    assert "/v1/tenant/bluebird/" in response.json()["detail"]


def test_tenant_token_reading_another_tenant_is_403(served: Api) -> None:
    own = served.record("bluebird-books.yaml")
    other = served.record("corner-cafe.yaml")
    token = mint(served.session, "bb-admins", tenant_id=own)
    response = served.client.get(f"/v1/tenant/{other}", headers=served.as_(token))
    entry = _refused(served, response, 403)
    assert entry["tenant_id"] == other


def test_platform_token_on_the_tenant_surface_is_403(served: Api) -> None:
    tenant_id = served.record("bluebird-books.yaml")
    response = served.client.get(f"/v1/tenant/{tenant_id}", headers=served.as_(served.admin))
    _refused(served, response, 403)


def test_expired_and_revoked_tokens_are_401(served: Api) -> None:
    expired = "tcp_expired-for-the-test"
    now = datetime.now(UTC)
    row = stored.TokenRow(
        "tok_expired0001",
        "old",
        "platform",
        "admin",
        None,
        "test",
        now - timedelta(days=2),
        now - timedelta(days=1),
        None,
    )
    stored.insert(served.session.store.engine, row, hashlib.sha256(expired.encode()).hexdigest())
    response = served.client.get("/v1/tenants", headers=served.as_(expired))
    assert "expired" in str(_refused(served, response, 401)["detail"]["reason"])  # type: ignore[index]
    token, minted = tokens.create(served.session, "soon-gone", role="viewer")
    assert served.client.get("/v1/tenants", headers=served.as_(token)).status_code == 200
    # The replica has the token cached now; the revocation reaches it by NOTIFY.
    revoker = service.open_session(actor="someone-else")
    tokens.revoke(revoker, minted.id)

    def refused() -> httpx.Response | None:
        found = served.client.get("/v1/tenants", headers=served.as_(token))
        return found if found.status_code == 401 else None

    response = eventually(refused, within=1)
    assert "revoked" in str(_refused(served, response, 401)["detail"]["reason"])  # type: ignore[index]


def test_tenant_view_shows_only_its_own_entries(served: Api) -> None:
    own = served.record("bluebird-books.yaml")
    other = served.record("corner-cafe.yaml")
    served.session.store.audit("test.platform", None, {})
    served.session.store.audit("test.other", other, {})
    served.session.store.audit("test.own", own, {})
    token = mint(served.session, "bb-admins", tenant_id=own)
    status = served.client.get(f"/v1/tenant/{own}", headers=served.as_(token)).json()
    assert (status["id"], status["hosts"]) == (own, {"bluebird.tenants.example.com": "subdomain"})
    entries = served.client.get(f"/v1/tenant/{own}/audit", headers=served.as_(token)).json()
    assert {e["tenant_id"] for e in entries["items"]} == {own}
    assert "test.own" in {e["action"] for e in entries["items"]}
    operations = served.client.get(f"/v1/tenant/{own}/operations", headers=served.as_(token))
    assert operations.json() == {"items": []}


def test_only_the_hash_is_stored(served: Api) -> None:
    token, row = tokens.create(served.session, "hashed", role="viewer")
    with served.session.store.engine.connect() as conn:
        stored_row = conn.execute(sa.text("SELECT * FROM api_tokens WHERE id = :i"), {"i": row.id})
        values = [str(v) for v in stored_row.one()]
    assert token not in values
    assert hashlib.sha256(token.encode()).hexdigest() in values


@pytest.mark.usefixtures("cli_env")
def test_token_cli_create_list_revoke_and_errors() -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["token", "create", "ci", "--role", "operator", "-o", "json"])
    assert created.exit_code == 0, created.output
    minted = json.loads(created.stdout)
    assert minted["token"].startswith("tcp_")
    assert (minted["kind"], minted["role"]) == ("platform", "operator")
    listed = runner.invoke(app, ["token", "list", "-o", "json"])
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["status"]) for r in rows] == [(minted["id"], "active")]
    assert minted["token"] not in listed.stdout
    assert runner.invoke(app, ["token", "revoke", minted["id"]]).exit_code == 0
    rows = json.loads(runner.invoke(app, ["token", "list", "-o", "json"]).stdout)
    assert rows[0]["status"] == "revoked"
    both = runner.invoke(app, ["token", "create", "x", "--role", "admin", "--tenant", "t"])
    assert both.exit_code == 2
    assert runner.invoke(app, ["token", "create", "x", "--tenant", "nobody"]).exit_code == 3
    assert runner.invoke(app, ["token", "revoke", "tok_nope"]).exit_code == 3
    assert (
        runner.invoke(
            app, ["token", "create", "x", "--role", "admin", "--expires", "soon"]
        ).exit_code
        == 2
    )


def test_only_admins_manage_tokens_over_http(served: Api) -> None:
    body = {"name": "gw", "role": "viewer", "expires_in": 3600}
    refused = served.client.post("/v1/tokens", json=body, headers=served.as_(served.operator))
    entry = _refused(served, refused, 403)
    assert str(entry["actor"]).startswith("token:ops(")
    created = served.client.post(
        "/v1/tokens", json=body, headers={**served.as_(served.admin), "X-Request-ID": "mint-1"}
    )
    assert created.status_code == 201, created.text
    minted = created.json()
    assert served.client.get("/v1/tenants", headers=served.as_(minted["token"])).status_code == 200
    audit = served.session.store.audit_entries(limit=1)[0]
    assert (audit["action"], audit["detail"]["request_id"]) == ("token.created", "mint-1")
    assert str(audit["actor"]).startswith("token:admin(")
    listed = served.client.get("/v1/tokens", headers=served.as_(served.admin)).json()["items"]
    assert minted["id"] in {t["id"] for t in listed}
    assert minted["token"] not in json.dumps(listed, default=str)
    revoked = served.client.delete(f"/v1/tokens/{minted['id']}", headers=served.as_(served.admin))
    assert revoked.json()["status"] == "revoked"
    both = {"name": "x", "role": "admin", "tenant_id": "t"}
    bad = served.client.post("/v1/tokens", json=both, headers=served.as_(served.admin))
    assert (bad.status_code, bad.json()["exit_code"]) == (422, 2)
    refusal = served.session.store.audit_entries(limit=1)[0]
    assert (refusal["action"], refusal["detail"]["outcome"]) == ("api.token.create", "refused")
