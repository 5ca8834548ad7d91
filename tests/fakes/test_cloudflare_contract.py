"""The Cloudflare emulator checked against the API contract (`shared/contracts`).

Every response the emulator gives while the real driver (and the SDK directly, for the
endpoints the driver does not use) exercises it is validated against the OpenAPI subset
with an OAS 3.0-aware validator, success and failure alike. A test also pins that the
driver's endpoints were all exercised, so a new SDK call cannot slip past the contract.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cloudflare
import httpx
import pytest
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from controlplane.drivers.cloudflare import CloudflareDns
from controlplane.models.dns import DnsRecord, TenantDns
from tests.fakes.cloudflare_api import DROPPED, PREFIX, Call, CloudflareEmulator, Fault
from tests.fakes.cloudflare_fixtures import SDK_BASE_URL, TOKEN, ZONE

# A vendored copy of ../shared/contracts/cloudflare-dns.openapi.json (kept identical: see
# test_vendored_contract_matches_the_shared_one).
CONTRACT = Path(__file__).resolve().parent / "contracts" / "cloudflare-dns.openapi.json"
SHARED = Path("/work/shared/contracts") / CONTRACT.name
DOC_URI = "urn:cloudflare-dns-openapi"

# (method, path template) of every request CloudflareDns makes.
DRIVER_ENDPOINTS = {
    ("GET", "/zones/{zone_id}/dns_records"),
    ("POST", "/zones/{zone_id}/dns_records"),
    ("PATCH", "/zones/{zone_id}/dns_records/{dns_record_id}"),
    ("DELETE", "/zones/{zone_id}/dns_records/{dns_record_id}"),
    ("GET", "/zones/{zone_id}/custom_hostnames"),
    ("POST", "/zones/{zone_id}/custom_hostnames"),
    ("DELETE", "/zones/{zone_id}/custom_hostnames/{custom_hostname_id}"),
}


@cache
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(CONTRACT.read_text())
    return spec


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    out = []
    for template in _spec()["paths"]:
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", template)
        out.append((re.compile(f"^{pattern}$"), template))
    return out


def _template(path: str) -> str:
    rel = path.removeprefix(PREFIX)
    matches = [t for rx, t in _templates() if rx.match(rel)]
    assert matches, f"emulator answered a path outside the contract: {path}"
    return matches[0]


def _pointer(*parts: str) -> str:
    escaped = (quote(p.replace("~", "~0").replace("/", "~1"), safe="~") for p in parts)
    return "#/" + "/".join(escaped)


@cache
def _validator(method: str, template: str, status: int) -> OAS30Validator:
    """Validator of one response schema, resolving `#/components/...` in the whole spec."""
    responses = _spec()["paths"][template][method.lower()]["responses"]
    # The contract documents 200 and 4XX; a 5xx carries the same failure envelope.
    key = str(status) if str(status) in responses else "4XX" if status >= 400 else ""
    assert key in responses, f"{method} {template}: the contract has no HTTP {status}"
    pointer = _pointer("paths", template, method.lower(), "responses", key, "content")
    resource = Resource.from_contents(_spec(), default_specification=DRAFT4)
    registry: Registry[Any] = Registry().with_resource(DOC_URI, resource)
    ref = f"{DOC_URI}{pointer}/application~1json/schema"
    return OAS30Validator({"$ref": ref}, registry=registry)


def _check(call: Call) -> tuple[str, str]:
    template = _template(call.path)
    validator = _validator(call.method, template, call.status)
    errors = sorted(validator.iter_errors(call.payload), key=str)
    assert not errors, f"{call.method} {call.path} -> {call.status}: {errors[0]}"
    return call.method, template


def _tenant(tenant_id: str, *custom: str) -> TenantDns:
    name = f"{tenant_id}.{ZONE}"
    return TenantDns(
        tenant_id=tenant_id,
        owner="tenantctl",
        zone=ZONE,
        records=(DnsRecord("CNAME", name, f"ingress.{ZONE}"),),
        custom_hostnames=custom,
        origin=name,
    )


def _exercise_driver(emulator: CloudflareEmulator, dns: CloudflareDns, zone: str) -> None:
    acme = _tenant("acme", "shop.acme.com")
    dns.apply(acme)  # creates
    dns.apply(acme)  # no-op reads
    dns.status(acme)
    with dns.snapshot():  # bulk listing of the zone and of custom hostnames
        dns.verify(acme)
    emulator.seed_record(zone, type="A", name="taken", content="192.0.2.1")
    with pytest.raises(Exception, match="taken"):
        dns.apply(_tenant("taken"))  # collision: list only
    emulator.seed_record(zone, type="CNAME", name="drift", content="old.example.net")
    drift = _tenant("drift")
    record = next(r for r in emulator.records(zone) if r["name"] == f"drift.{ZONE}")
    emulator.seed_record(zone, type="TXT", name="other", content="x")
    dns.client.dns.records.edit(
        record["id"], zone_id=zone, type="CNAME", name="drift", ttl=1, comment=drift.comment
    )
    dns.apply(drift)  # PATCH towards the desired target
    emulator.inject(Fault(status=500, times=1, method="POST", after_write=True))
    dns.apply(_tenant("lossy"))  # 500 after the write, driver retry -> 400 81057
    dns.destroy(acme)


def _exercise_sdk(client: cloudflare.Cloudflare, emulator: CloudflareEmulator, zone: str) -> None:
    """The contract's other endpoints and error shapes, through the SDK directly."""
    list(client.zones.list(per_page=5))
    created = client.dns.records.create(
        zone_id=zone, type="TXT", name="@", content="v=spf1 -all", ttl=3600
    )
    assert created is not None
    client.dns.records.get(created.id, zone_id=zone)
    client.dns.records.update(created.id, zone_id=zone, type="TXT", name="@", content="x", ttl=60)
    host = client.custom_hostnames.create(
        zone_id=zone, hostname="app.customer.example", ssl={"method": "http", "type": "dv"}
    )
    assert host is not None
    client.custom_hostnames.get(host.id, zone_id=zone)
    client.custom_hostnames.edit(host.id, zone_id=zone, ssl={"method": "txt"})
    failures: list[Callable[[], object]] = [
        lambda: client.dns.records.get("0" * 32, zone_id=zone),  # 404 81044
        lambda: client.dns.records.list(zone_id="not-a-zone"),  # 400 7003/7000
        lambda: client.dns.records.create(
            zone_id=zone, type="TXT", name="t", content="x", ttl=5, proxied=True
        ),  # 400 proxiable
        lambda: client.dns.records.create(
            zone_id=zone, type="TXT", name="t", content="x", ttl=5
        ),  # 400 TTL
    ]
    for call in failures:
        with pytest.raises(cloudflare.APIStatusError):
            call()
    with pytest.raises(cloudflare.ConflictError):
        client.with_options(max_retries=0).custom_hostnames.create(
            zone_id=zone, hostname="app.customer.example", ssl={"method": "http", "type": "dv"}
        )
    emulator.inject(Fault(status=429, retry_after=0.05, times=1, method="GET"))
    client.dns.records.list(zone_id=zone, page=99)  # 429, then the empty page past the end
    client.custom_hostnames.delete(host.id, zone_id=zone)
    client.dns.records.delete(created.id, zone_id=zone)


def test_every_emulator_response_matches_the_contract(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str, cloudflare_dns: CloudflareDns
) -> None:
    _exercise_driver(cloudflare_emulator, cloudflare_dns, cloudflare_zone)
    driver_calls = list(cloudflare_emulator.calls)
    client = cloudflare.Cloudflare(
        api_token=TOKEN,
        base_url=SDK_BASE_URL,
        http_client=httpx.Client(transport=httpx.WSGITransport(app=cloudflare_emulator)),
    )
    _exercise_sdk(client, cloudflare_emulator, cloudflare_zone)

    checked = {_check(call) for call in cloudflare_emulator.calls}
    statuses = {c.status for c in cloudflare_emulator.calls}
    assert {_check(c) for c in driver_calls} >= DRIVER_ENDPOINTS
    assert len(checked) == 12  # all operations of the contract
    assert {200, 400, 404, 409, 429, 500} <= statuses


def test_failure_envelopes_carry_cloudflare_codes(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str
) -> None:
    emu = cloudflare_emulator
    zone = cloudflare_zone
    base = f"{PREFIX}/zones/{zone}/dns_records"

    def post(body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        return emu.handle("POST", base, "", json.dumps(body).encode(), TOKEN)

    cname = {"type": "CNAME", "name": "a", "content": "t.example.net", "ttl": 1}
    assert post(cname)[0] == 200
    cases = [
        ("identical record", cname, 400, 81057),
        ("CNAME onto a CNAME", {**cname, "content": "u.example.net"}, 400, 81053),
        (
            "A onto a CNAME",
            {"type": "A", "name": "A.", "content": "192.0.2.1", "ttl": 1},
            400,
            81054,
        ),
    ]
    for reason, body, status, code in cases:
        got_status, _, payload = post(body)
        assert (got_status, payload["errors"][0]["code"]) == (status, code), reason
        _check(Call("POST", base, "", got_status, 0, payload))
    status, _, payload = emu.handle("GET", f"{PREFIX}/zones", "", b"", "wrong-token")
    assert (status, payload["errors"][0]["code"]) == (403, 10000)


# --- emulator behaviours the contract README lists ------------------------------------


class _Api:
    """Raw requests to the emulator (below the SDK), each checked against the contract."""

    def __init__(self, emulator: CloudflareEmulator, zone: str) -> None:
        self.emu, self.zone = emulator, zone

    def __call__(
        self, method: str, rel: str, body: dict[str, Any] | None = None, query: str = ""
    ) -> tuple[int, dict[str, str], Any]:
        path = f"{PREFIX}/zones/{self.zone}/{rel}" if rel else f"{PREFIX}/zones"
        raw = json.dumps(body).encode() if body is not None else b""
        status, headers, payload = self.emu.handle(method, path, query, raw, TOKEN)
        _check(Call(method, path, query, status, 0, payload))
        return status, headers, payload


NAME_CASES = [
    ("relative name", "www", "www.tenants.example.com"),
    ("apex", "@", "tenants.example.com"),
    ("mixed case FQDN with dot", "WWW.Tenants.Example.com.", "www.tenants.example.com"),
    ("unicode to punycode", "bücher", "xn--bcher-kva.tenants.example.com"),
]


@pytest.mark.parametrize(("reason", "given", "stored"), NAME_CASES)
def test_names_are_normalised(
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
    reason: str,
    given: str,
    stored: str,
) -> None:
    api = _Api(cloudflare_emulator, cloudflare_zone)
    status, _, created = api("POST", "dns_records", {"type": "TXT", "name": given, "content": "x"})
    assert (status, created["result"]["name"]) == (200, stored), reason
    _, _, found = api("GET", "dns_records", query=f"name.exact={given.upper()}")
    assert [r["name"] for r in found["result"]] == [stored]


RULE_CASES = [
    ("TTL below 60", {"type": "TXT", "content": "x", "ttl": 59}, 400, 9021),
    ("TTL above a day", {"type": "TXT", "content": "x", "ttl": 86401}, 400, 9021),
    ("automatic TTL", {"type": "TXT", "content": "x", "ttl": 1}, 200, None),
    ("TXT cannot be proxied", {"type": "TXT", "content": "x", "proxied": True}, 400, 9004),
    ("A must be IPv4", {"type": "A", "content": "2001:db8::1"}, 400, 9005),
]


@pytest.mark.parametrize("case", RULE_CASES, ids=lambda c: str(c[0]))
def test_record_rules(
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
    case: tuple[str, dict[str, Any], int, int | None],
) -> None:
    reason, body, status, code = case
    api = _Api(cloudflare_emulator, cloudflare_zone)
    got, _, payload = api("POST", "dns_records", {"name": "r", **body})
    codes = [e["code"] for e in payload["errors"]]
    assert (got, codes[:1]) == (status, [code] if code else []), reason


def test_proxied_records_report_automatic_ttl_and_proxiable(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str
) -> None:
    api = _Api(cloudflare_emulator, cloudflare_zone)
    body = {"type": "CNAME", "name": "p", "content": "t.example.net", "ttl": 300, "proxied": True}
    _, _, cname = api("POST", "dns_records", body)
    _, _, txt = api("POST", "dns_records", {"type": "TXT", "name": "p", "content": "x"})
    assert (cname["result"]["ttl"], cname["result"]["proxiable"]) == (1, True)
    assert (txt["result"]["proxiable"], txt["result"]["proxied"]) == (False, False)


def test_put_replaces_and_patch_merges(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str
) -> None:
    api = _Api(cloudflare_emulator, cloudflare_zone)
    body = {
        "type": "TXT",
        "name": "m",
        "content": "a",
        "ttl": 300,
        "comment": "keep",
        "tags": ["t:1"],
    }
    _, _, made = api("POST", "dns_records", body)
    rel = f"dns_records/{made['result']['id']}"
    _, _, patched = api("PATCH", rel, {"content": "b"})
    assert (patched["result"]["content"], patched["result"]["comment"]) == ("b", "keep")
    assert (patched["result"]["ttl"], patched["result"]["tags"]) == (300, ["t:1"])
    _, _, put = api("PUT", rel, {"type": "TXT", "name": "m", "content": "c", "ttl": 1})
    assert "comment" not in put["result"]
    assert (put["result"]["content"], put["result"]["tags"], put["result"]["ttl"]) == ("c", [], 1)
    assert api("GET", "dns_records/" + "f" * 32)[0] == 404


PAGE_CASES = [
    ("DNS default page size", "dns_records", "", 200, 100),
    ("DNS page past the end", "dns_records", "page=9", 200, 0),
    ("hostnames per_page below 5", "custom_hostnames", "per_page=4", 400, 0),
    ("hostnames per_page above 50", "custom_hostnames", "per_page=51", 400, 0),
    ("zones per_page 5", "", "per_page=5", 200, 1),
]


@pytest.mark.parametrize("case", PAGE_CASES, ids=lambda c: str(c[0]))
def test_pagination(
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
    case: tuple[str, str, str, int, int],
) -> None:
    reason, rel, query, status, count = case
    for i in range(130):
        cloudflare_emulator.seed_record(cloudflare_zone, type="TXT", name=f"n{i}", content="x")
    got, _, payload = _Api(cloudflare_emulator, cloudflare_zone)("GET", rel, query=query)
    assert (got, len(payload["result"] or [])) == (status, count), reason
    if got == 200 and rel == "dns_records":
        assert payload["result_info"]["total_count"] == 130
        assert payload["result_info"]["total_pages"] == 2


def test_rate_limit_headers_and_429_after_the_window_fills() -> None:
    clock = [0.0]
    emu = CloudflareEmulator(
        tokens=[TOKEN], rate_limit=3, rate_window=300.0, clock=lambda: clock[0]
    )
    answers = [emu.handle("GET", f"{PREFIX}/zones", "", b"", TOKEN) for _ in range(4)]
    assert [a[1]["X-RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    status, headers, payload = answers[3]
    assert (status, payload["errors"][0]["code"]) == (429, 10100)
    assert headers["Retry-After"] == headers["X-RateLimit-Reset"] == "300"
    clock[0] = 301.0
    assert emu.handle("GET", f"{PREFIX}/zones", "", b"", TOKEN)[0] == 200


def test_validator_rejects_a_wrong_shape() -> None:
    validator = _validator("GET", "/zones/{zone_id}/dns_records", 200)
    assert not validator.is_valid({"success": True, "errors": [], "messages": [], "result": [{}]})


def test_vendored_contract_matches_the_shared_one() -> None:
    # ../shared sits beside every checkout here (and in CI): a missing one is a failure,
    # not a skip, so drift between the copies can never go unnoticed.
    assert SHARED.exists(), f"{SHARED} is missing: clone beside ../shared"
    assert CONTRACT.read_bytes() == SHARED.read_bytes()


# --- injected faults ------------------------------------------------------------------


def test_periodic_faults_fail_every_third_and_fifth_request(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str
) -> None:
    cloudflare_emulator.inject(Fault(status=429, every=3, times=None))
    cloudflare_emulator.inject(Fault(status=500, every=5, times=None))
    api = _Api(cloudflare_emulator, cloudflare_zone)
    answers = [api("GET", "dns_records") for _ in range(15)]
    statuses = [status for status, _, _ in answers]
    assert statuses == [200, 200, 429, 200, 500, 429, 200, 200, 429, 500, 200, 429, 200, 200, 429]
    for status, headers, payload in answers:
        if status == 429:  # Cloudflare's 429: code 10100 and a Retry-After, always
            assert (payload["errors"][0]["code"], headers["Retry-After"]) == (10100, "1")
            assert headers["X-RateLimit-Reset"] == "1"
        if status == 500:
            assert (payload["success"], payload["result"]) == (False, None)
            assert "Retry-After" not in headers


def test_fault_after_write_applies_the_write_then_fails_the_reply(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str
) -> None:
    cloudflare_emulator.inject(Fault(status=500, method="POST", after_write=True))
    api = _Api(cloudflare_emulator, cloudflare_zone)
    body = {"type": "TXT", "name": "lost", "content": "x"}
    assert api("POST", "dns_records", body)[0] == 500
    assert [r["name"] for r in cloudflare_emulator.records(cloudflare_zone)] == [f"lost.{ZONE}"]
    status, _, payload = api("POST", "dns_records", body)  # the client's retry
    assert (status, payload["errors"][0]["code"]) == (400, 81057)


def test_dropped_connection_after_the_write_gives_no_reply(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str
) -> None:
    cloudflare_emulator.inject(Fault(method="POST", after_write=True, drop=True))
    client = httpx.Client(transport=httpx.WSGITransport(app=cloudflare_emulator))
    url = f"{SDK_BASE_URL}/zones/{cloudflare_zone}/custom_hostnames"
    body = {"hostname": "shop.acme.com", "ssl": {"method": "txt", "type": "dv"}}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with pytest.raises(ConnectionResetError):
        client.post(url, json=body, headers=headers)
    assert [h["hostname"] for h in cloudflare_emulator.hostnames(cloudflare_zone)] == [
        "shop.acme.com"
    ]
    assert [c.status for c in cloudflare_emulator.calls] == [DROPPED]
    again = client.post(url, json=body, headers=headers)
    assert (again.status_code, again.json()["errors"][0]["code"]) == (409, 1406)
