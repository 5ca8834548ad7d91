"""The resolver: host normalisation, outcomes, the live index, decision logs, audit."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from controlplane import api, service
from controlplane.service import resolving
from controlplane.service.resolving import normalise_host
from controlplane.service.submitting import parse_tenant
from controlplane.steps.records import spec_fingerprint
from tests.api.conftest import Api, eventually, mint, record

NORMALISED = [
    # (reason, raw, want)
    ("case", "Shop.Acme.COM", "shop.acme.com"),
    ("trailing dot", "shop.acme.com.", "shop.acme.com"),
    ("port", "shop.acme.com:8443", "shop.acme.com"),
    ("port and dot", "SHOP.acme.com.:443", "shop.acme.com"),
    ("unicode label", "Bücher.example", "xn--bcher-kva.example"),
    ("already idna", "xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("spaces", "  acme.example  ", "acme.example"),
]


@pytest.mark.parametrize(("reason", "raw", "want"), NORMALISED, ids=[r[0] for r in NORMALISED])
def test_normalise_host(reason: str, raw: str, want: str) -> None:
    assert normalise_host(raw) == want, reason


@pytest.mark.parametrize(
    "raw",
    [
        "",
        ".",
        "a b.example",
        "x" * 300,
        "bad_label..example",
        "[::1]:8080",
        "ab--cd.example",  # hyphens at 3-4 without xn--: the fast path leaves it to IDNA
        "-shop.example",
        ("x" * 64) + ".example",
    ],
)
def test_not_a_hostname_is_a_config_error(raw: str) -> None:
    with pytest.raises(service.ControlPlaneError) as caught:
        normalise_host(raw)
    assert caught.value.exit_code == 2


def _resolve(served: Api, **params: str) -> tuple[int, dict[str, object]]:
    headers = served.as_(served.viewer)
    if "tenant_id" in params:
        headers["X-Tenant-ID"] = params.pop("tenant_id")
    response = served.client.get("/v1/resolve", params=params, headers=headers)
    return response.status_code, response.json()


def test_host_and_header_variants_return_the_routing_context(served: Api) -> None:
    served.record("acme-retail.yaml")
    status, body = _resolve(served, host="SHOP.Acme.com.:443")
    assert status == 200
    assert body["tenant_id"] == "tenant-100"
    assert (body["tier"], body["region"], body["status"]) == ("enterprise", "us-east-1", "active")
    assert body["features"] == {"ai_agents": True, "dynamic_pricing": False}
    assert "password" not in json.dumps(body)
    status, by_id = _resolve(served, tenant_id="tenant-100")
    assert (status, by_id["tenant_id"]) == (200, "tenant-100")


def test_unknown_host_or_id_is_404_never_a_default(served: Api) -> None:
    served.record("acme-retail.yaml")
    for params in ({"host": "nobody.example.com"}, {"tenant_id": "nobody"}):
        status, body = _resolve(served, **params)
        assert (status, body["outcome"], body["tenant_id"]) == (404, "unknown", None)


def test_suspended_deleted_and_provisioning_are_reported_not_routed(served: Api) -> None:
    served.record("bluebird-books.yaml", status="suspended")
    served.record("corner-cafe.yaml", status="deleted")
    served.record("acme-retail.yaml", status="provisioning")
    cases = {
        "bluebird.tenants.example.com": (403, "suspended"),
        "cornercafe.tenants.example.com": (410, "deleted"),
        "shop.acme.com": (503, "not_ready"),
    }
    for host, (want_status, outcome) in cases.items():
        status, body = _resolve(served, host=host)
        assert (status, body["outcome"]) == (want_status, outcome), host
        assert body["tenant_status"] in ("suspended", "deleted", "provisioning")


def test_a_host_that_normalises_to_two_tenants_is_ambiguous_404(served: Api) -> None:
    platform, _ = service.inputs.load([], None)
    for tenant_id, host in (("one", "shop.twice.example"), ("two", "Shop.Twice.Example.")):
        text = f"tenant: {{id: {tenant_id}, name: N, tier: standard, region: us-east-1}}"
        tenant = parse_tenant(text.encode(), "application/yaml", platform).tenant
        served.session.store.record_tenant(
            tenant.model_dump(mode="json"),
            fingerprint=spec_fingerprint(tenant, platform),
            source_file="",
            hosts={host: "custom"},
        )
        served.session.store.set_status(tenant_id, "active")

    def ambiguous() -> tuple[int, dict[str, object]] | None:
        found = _resolve(served, host="shop.twice.example")
        return found if found[1]["outcome"] == "ambiguous" else None

    status, body = eventually(ambiguous, within=5)
    assert (status, body["candidates"], body["tenant_id"]) == (404, 2, None)


def test_missing_or_invalid_host_is_422(served: Api) -> None:
    assert _resolve(served)[0] == 422
    status, body = _resolve(served, host="a b")
    assert (status, body["exit_code"]) == (422, 2)


def test_changes_reach_the_index_through_notify(served: Api) -> None:
    assert _resolve(served, host="bluebird.tenants.example.com")[0] == 404
    served.record("bluebird-books.yaml")
    eventually(
        lambda: _resolve(served, host="bluebird.tenants.example.com")[0] == 200 or None, within=1
    )
    served.session.store.set_status("bluebird", "suspended")
    eventually(
        lambda: _resolve(served, host="bluebird.tenants.example.com")[0] == 403 or None, within=1
    )


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


@pytest.fixture
def decisions() -> Iterator[_Lines]:
    logger = logging.getLogger(resolving.__name__)
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_each_decision_is_one_structured_line_and_failures_one_audit_entry(
    cli_env: dict[str, str], tmp_path: Path, decisions: _Lines
) -> None:
    session = service.open_session(actor="api-test", out_dir=tmp_path / "out")
    record(session, "acme-retail.yaml")
    token = mint(session, "gateway", role="viewer")
    headers = {"Authorization": f"Bearer {token}", "X-Request-ID": "r-1"}
    platform, _ = service.inputs.load([], None)
    with TestClient(api.create_app(session, platform, audit_every=3600)) as client:
        assert (
            client.get("/v1/resolve", params={"host": "shop.acme.com"}, headers=headers).status_code
            == 200
        )
        for n in range(50):
            client.get("/v1/resolve", params={"host": f"h{n % 5}.unknown.example"}, headers=headers)
    assert len(decisions.lines) == 51
    first = decisions.lines[0]
    assert {k: first[k] for k in ("request_id", "host", "tenant", "outcome")} == {
        "request_id": "r-1",
        "host": "shop.acme.com",
        "tenant": "tenant-100",
        "outcome": "routed",
    }
    assert isinstance(first["latency_ms"], float)
    failed = [e for e in session.store.audit_entries(limit=100) if e["action"] == "resolve.failed"]
    assert len(failed) == 1
    assert failed[0]["detail"]["total"] == 50
    assert failed[0]["detail"]["by_outcome"] == {"unknown": 50}
    assert {t["count"] for t in failed[0]["detail"]["top"]} == {10}
