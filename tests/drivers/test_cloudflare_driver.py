"""The Cloudflare DNS driver through the official SDK against the emulator.

Covers the issue's acceptance: onboarding creates the record once and a re-run writes
nothing; a foreign record at the tenant's name is a collision left untouched; delete
leaves foreign records alone; 429/500/slow replies end without duplicates; and the
request budget in Postgres is shared and makes callers wait instead of fail.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from controlplane import flows, service, testing
from controlplane.drivers.cloudflare import TOKEN_ENV, CloudflareDns
from controlplane.engine.retrying import RetryPolicy
from controlplane.engine.steps import StepContext
from controlplane.errors import CloudflareError, ConflictError, StepFailedError
from controlplane.flows import onboarding
from controlplane.models.operations import StepStatus
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.resources import dns as dns_resources
from controlplane.state import budgets, database
from controlplane.state.store import Store
from tests.fakes.cloudflare_api import CloudflareEmulator, Fault
from tests.fakes.cloudflare_fixtures import TOKEN, ZONE

PLATFORM = PlatformConfig()


def _tenant(tenant_id: str, *custom: str) -> Tenant:
    return Tenant.model_validate(
        {
            "id": tenant_id,
            "name": tenant_id.title(),
            "tier": "standard",
            "region": "us-east-1",
            "domains": {"custom": list(custom)},
        }
    )


def _named(emulator: CloudflareEmulator, zone: str, name: str) -> list[dict[str, Any]]:
    return [r for r in emulator.records(zone) if r["name"] == name]


# --- driver ------------------------------------------------------------------------


def test_apply_creates_the_proxied_cname_once_and_rerun_writes_nothing(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str, cloudflare_dns: CloudflareDns
) -> None:
    want = dns_resources.desired(_tenant("acme"), PLATFORM)
    assert [c.action for c in cloudflare_dns.plan(want)] == ["create"]
    cloudflare_dns.apply(want)
    before = len(cloudflare_emulator.calls)
    report = cloudflare_dns.apply(want)

    (record,) = _named(cloudflare_emulator, cloudflare_zone, f"acme.{ZONE}")
    assert (record["type"], record["content"], record["proxied"], record["ttl"]) == (
        "CNAME",
        f"ingress.{ZONE}",
        True,
        1,
    )
    assert record["comment"] == "managed-by=tenantctl owner=tenantctl tenant=acme"
    assert [c.action for c in report.changes] == ["noop"]
    assert [c for c in cloudflare_emulator.calls[before:] if c.is_write] == []
    assert cloudflare_dns.verify(want) == []


def test_foreign_record_at_the_name_is_a_collision_and_stays_untouched(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str, cloudflare_dns: CloudflareDns
) -> None:
    foreign = cloudflare_emulator.seed_record(
        cloudflare_zone, type="A", name="acme", content="192.0.2.7", comment="marketing site"
    )
    want = dns_resources.desired(_tenant("acme"), PLATFORM)

    with pytest.raises(ConflictError) as caught:
        cloudflare_dns.apply(want)

    message = caught.value.message
    assert f"A acme.{ZONE} -> 192.0.2.7 (id {foreign['id']}" in message
    assert "nothing was changed" in message
    assert "set its comment to 'managed-by=tenantctl owner=tenantctl tenant=acme'" in message
    assert cloudflare_emulator.records(cloudflare_zone) == [foreign]
    assert cloudflare_emulator.writes() == []
    assert [c.action for c in cloudflare_dns.plan(want)] == ["conflict"]


def test_record_owned_by_another_tenant_is_a_collision(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str, cloudflare_dns: CloudflareDns
) -> None:
    other = dns_resources.desired(_tenant("globex"), PLATFORM)
    cloudflare_emulator.seed_record(
        cloudflare_zone, type="CNAME", name="acme", content=f"ingress.{ZONE}", comment=other.comment
    )
    with pytest.raises(ConflictError, match="tenant=globex"):
        cloudflare_dns.apply(dns_resources.desired(_tenant("acme"), PLATFORM))
    assert cloudflare_emulator.writes() == []


def test_identical_unowned_record_is_adopted_then_left_alone(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str, cloudflare_dns: CloudflareDns
) -> None:
    seeded = cloudflare_emulator.seed_record(
        cloudflare_zone, type="CNAME", name="acme", content=f"ingress.{ZONE}", proxied=True
    )
    want = dns_resources.desired(_tenant("acme"), PLATFORM)
    assert [c.action for c in cloudflare_dns.apply(want).changes] == ["adopt"]
    (record,) = cloudflare_emulator.records(cloudflare_zone)
    assert (record["id"], record["comment"]) == (seeded["id"], want.comment)
    assert [c.action for c in cloudflare_dns.apply(want).changes] == ["noop"]
    assert [c.method for c in cloudflare_emulator.writes()] == ["PATCH"]


def test_drift_of_an_owned_record_is_patched_back(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str, cloudflare_dns: CloudflareDns
) -> None:
    want = dns_resources.desired(_tenant("acme"), PLATFORM)
    cloudflare_emulator.seed_record(
        cloudflare_zone, type="CNAME", name="acme", content="old.example.net", comment=want.comment
    )
    assert cloudflare_dns.verify(want) == [
        f"acme.{ZONE}: update needed old.example.net -> ingress.{ZONE}"
    ]
    cloudflare_dns.apply(want)
    (record,) = cloudflare_emulator.records(cloudflare_zone)
    assert (record["content"], record["proxied"]) == (f"ingress.{ZONE}", True)


def test_destroy_removes_only_what_the_tenant_owns(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str, cloudflare_dns: CloudflareDns
) -> None:
    want = dns_resources.desired(_tenant("acme", "shop.acme.com"), PLATFORM)
    cloudflare_dns.apply(want)
    keep = [
        cloudflare_emulator.seed_record(cloudflare_zone, type="TXT", name="acme", content="v=1"),
        cloudflare_emulator.seed_record(
            cloudflare_zone, type="CNAME", name="www", content=f"ingress.{ZONE}"
        ),
    ]
    changes = cloudflare_dns.destroy(want)
    assert [c.target for c in changes] == [f"CNAME/acme.{ZONE}", "custom-hostname/shop.acme.com"]
    assert sorted(cloudflare_emulator.records(cloudflare_zone), key=str) == sorted(keep, key=str)
    assert cloudflare_emulator.hostnames(cloudflare_zone) == []
    assert cloudflare_dns.destroy(want) == []  # idempotent


def test_custom_hostnames_report_what_the_tenant_must_publish(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str, cloudflare_dns: CloudflareDns
) -> None:
    want = dns_resources.desired(_tenant("acme", "shop.acme.com"), PLATFORM)
    (status,) = cloudflare_dns.apply(want).hostnames
    (item,) = cloudflare_emulator.hostnames(cloudflare_zone)
    assert (status.hostname, status.status, status.ssl_status) == (
        "shop.acme.com",
        "pending",
        "pending_validation",
    )
    published = {(p.purpose, p.type, p.name, p.value) for p in status.publish}
    assert ("traffic", "CNAME", "shop.acme.com", f"acme.{ZONE}") in published
    owner = item["ownership_verification"]
    assert ("ownership", "TXT", owner["name"], owner["value"]) in published
    cert = item["ssl"]["validation_records"][0]
    assert ("certificate", "TXT", cert["txt_name"], cert["txt_value"]) in published

    cloudflare_emulator.activate_hostname(cloudflare_zone, "shop.acme.com")
    (active,) = cloudflare_dns.status(want)
    assert active.active
    assert [p.purpose for p in active.publish] == ["traffic"]


def test_custom_hostname_created_by_a_lost_reply_is_adopted(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str, cloudflare_dns: CloudflareDns
) -> None:
    want = dns_resources.desired(_tenant("acme", "shop.acme.com"), PLATFORM)
    cloudflare_emulator.inject(
        Fault(status=502, method="POST", path_contains="custom_hostnames", after_write=True)
    )
    (status,) = cloudflare_dns.apply(want).hostnames  # no error: the driver's retry adopts
    (item,) = cloudflare_emulator.hostnames(cloudflare_zone)
    assert (status.hostname, status.id) == ("shop.acme.com", item["id"])
    posts = [
        c.status for c in cloudflare_emulator.calls if c.method == "POST" and "custom" in c.path
    ]
    assert posts == [502, 409]  # the retry's 409/1406 "duplicate" is our own lost write


def test_faults_429_and_500_end_without_duplicates(
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
    cloudflare_dns: CloudflareDns,
    cloudflare_sleeps: list[float],
) -> None:
    emulator = cloudflare_emulator
    emulator.inject(Fault(status=429, retry_after=0.05, method="GET"))
    emulator.inject(Fault(status=500, method="POST", after_write=True))
    emulator.inject(Fault(status=429, retry_after=0.05, method="POST"))
    want = dns_resources.desired(_tenant("acme"), PLATFORM)
    cloudflare_dns.apply(want)
    assert len(_named(emulator, cloudflare_zone, f"acme.{ZONE}")) == 1
    assert [c.status for c in emulator.calls if c.method == "POST"] == [500, 429, 400]
    assert max(c.retry_count for c in emulator.calls) >= 1  # the driver did retry
    assert cloudflare_sleeps.count(0.05) == 2  # each 429's Retry-After, honoured


def test_rate_limit_exhausted_is_a_retryable_error_with_retry_after(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str, cloudflare_dns: CloudflareDns
) -> None:
    cloudflare_emulator.inject(Fault(status=429, retry_after=0.01, times=10))
    with pytest.raises(CloudflareError) as caught:
        cloudflare_dns.apply(dns_resources.desired(_tenant("acme"), PLATFORM))
    assert (caught.value.retryable, caught.value.retry_after) == (True, 0.01)
    assert cloudflare_emulator.writes() == []


def test_slow_reply_over_real_http_times_out_and_retries_without_duplicates(
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
    cloudflare_url: str,
    cloudflare_token: str,
) -> None:
    del cloudflare_token
    cloudflare_emulator.inject(Fault(status=200, delay=1.0, method="POST", after_write=True))
    waits: list[float] = []
    driver = CloudflareDns(
        cloudflare_zone, base_url=cloudflare_url, timeout=0.3, sleep=waits.append
    )
    driver.apply(dns_resources.desired(_tenant("acme"), PLATFORM))
    assert len(_named(cloudflare_emulator, cloudflare_zone, f"acme.{ZONE}")) == 1
    assert len(waits) == 1  # one retry after the timeout, then 81057 and adoption


def test_pagination_reads_every_page(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str, cloudflare_dns: CloudflareDns
) -> None:
    for i in range(120):  # more TXT records at the name than one page holds
        cloudflare_emulator.seed_record(cloudflare_zone, type="TXT", name="acme", content=f"t{i}")
    want = dns_resources.desired(_tenant("acme"), PLATFORM)
    with pytest.raises(ConflictError) as caught:
        cloudflare_dns.apply(want)
    assert caught.value.message.count("TXT acme.") == 120
    pages = [c.query for c in cloudflare_emulator.calls if c.method == "GET"]
    assert len(pages) == 2  # no extra request for an empty page


def test_snapshot_verifies_many_tenants_with_a_few_zone_listings(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str, cloudflare_dns: CloudflareDns
) -> None:
    tenants = [
        dns_resources.desired(_tenant(f"t{i}", f"shop.t{i}.org"), PLATFORM) for i in range(60)
    ]
    for want in tenants:
        cloudflare_dns.apply(want)
    cloudflare_emulator.seed_record(cloudflare_zone, type="TXT", name="t5", content="foreign")
    before = len(cloudflare_emulator.calls)
    with cloudflare_dns.snapshot():
        problems = {w.tenant_id: cloudflare_dns.verify(w) for w in tenants}
        cloudflare_dns.apply(tenants[1])  # a no-op apply inside the block reads the snapshot
    reads = cloudflare_emulator.calls[before:]
    assert [c.method for c in reads] == ["GET", "GET", "GET"]  # records; hostnames x 2 pages
    assert [t for t, p in problems.items() if p] == ["t5"]


def test_missing_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(CloudflareError, match=f"{TOKEN_ENV} is not set"):
        CloudflareDns("0" * 32)


def test_token_never_appears_in_errors(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cret-" + uuid.uuid4().hex
    monkeypatch.setenv(TOKEN_ENV, secret)
    driver = CloudflareDns(
        cloudflare_zone,
        base_url="http://cloudflare.test/client/v4",
        transport=httpx.WSGITransport(app=cloudflare_emulator),
    )
    with pytest.raises(CloudflareError) as caught:
        driver.apply(dns_resources.desired(_tenant("acme"), PLATFORM))
    assert "refused the API token" in caught.value.message
    assert secret not in caught.value.message and secret not in repr(caught.value)


# --- the shared request budget (Postgres) -----------------------------------------------


@pytest.fixture
def engine(database_url: str) -> Iterator[Any]:
    engine = database.connect(database_url)
    yield engine
    engine.dispose()


def test_budget_allows_the_burst_then_says_how_long_to_wait(engine: Any) -> None:
    budget = budgets.PostgresRequestBudget(engine, "cf", limit=40, window=3000.0)
    granted = [budget.try_acquire() for _ in range(12)]
    assert granted[:10] == [0.0] * 10  # burst = a quarter of the limit
    assert all(wait > 50 for wait in granted[10:])  # 0.01 tokens/s: ~100 s per token


def test_budget_is_shared_by_processes_and_threads(database_url: str, engine: Any) -> None:
    other = database.connect(database_url)  # a second "worker process"
    try:
        buckets = [
            budgets.PostgresRequestBudget(e, "cf", limit=40, window=3000.0)
            for e in (engine, other, engine, other)
        ]
        wins: list[float] = []
        threads = [
            threading.Thread(target=lambda b=b: wins.extend(b.try_acquire() for _ in range(8)))
            for b in buckets
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert wins.count(0.0) == 10
    finally:
        other.dispose()


def test_empty_budget_makes_callers_wait_not_fail(engine: Any) -> None:
    clock = testing.FakeClock(now=datetime.now(UTC))
    budget = budgets.PostgresRequestBudget(
        engine, "cf", limit=8, window=1.0, sleep=clock.sleep, clock=clock
    )
    for _ in range(3):
        budget.acquire()
    # 2 tokens of burst, then one every 1/6 s: the third caller waited, nobody failed.
    assert clock.sleeps and all(0 < w < 1 for w in clock.sleeps)


def test_a_429_drains_the_shared_budget_for_everyone(
    engine: Any,
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
    cloudflare_token: str,
) -> None:
    del cloudflare_token
    clock = testing.FakeClock(now=datetime.now(UTC))
    budget = budgets.PostgresRequestBudget(
        engine, "cf", limit=1200, window=300.0, sleep=clock.sleep, clock=clock
    )
    driver = CloudflareDns(
        cloudflare_zone,
        budget=budget,
        base_url="http://cloudflare.test/client/v4",
        transport=httpx.WSGITransport(app=cloudflare_emulator),
        sleep=lambda _seconds: None,  # so the wait below is the budget's alone
    )
    cloudflare_emulator.inject(Fault(status=429, retry_after=0.2, method="GET"))
    driver.apply(dns_resources.desired(_tenant("acme"), PLATFORM))
    assert clock.sleeps and max(clock.sleeps) >= 0.19
    assert budget.available() < 5  # was 300: drained, so other workers hold back too


# --- the flow: record -> dns -> activate through the engine and the state store ---------


@pytest.fixture
def store(engine: Any) -> Store:
    return Store(engine, actor="test")


def _onboard(store: Store, driver: CloudflareDns, tenant: Tenant) -> str:
    steps = onboarding.steps(flows.Dependencies(registry=store, dns_provider=driver))
    outcome = testing.run_operation(
        store, StepContext(tenant, PLATFORM, ""), steps, policy=RetryPolicy(max_attempts=4)
    )
    if outcome.status != "succeeded":
        raise StepFailedError(outcome.message)
    return outcome.operation_id


def test_onboarding_flow_creates_once_and_a_rerun_is_a_noop(
    store: Store,
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
    cloudflare_dns: CloudflareDns,
) -> None:
    acme = _tenant("acme", "shop.acme.com")
    cloudflare_emulator.inject(Fault(status=500, method="POST", after_write=True, times=3))
    first = _onboard(store, cloudflare_dns, acme)
    writes = len(cloudflare_emulator.writes())
    _onboard(store, cloudflare_dns, acme)

    assert len(_named(cloudflare_emulator, cloudflare_zone, f"acme.{ZONE}")) == 1
    assert len(cloudflare_emulator.hostnames(cloudflare_zone)) == 1
    assert len(cloudflare_emulator.writes()) == writes  # re-run: reads only
    record = store.load_steps(first)["dns"]
    assert record.status is StepStatus.DONE
    assert "shop.acme.com" in record.outputs["custom_hostnames"]


def test_second_tenant_claiming_a_custom_domain_is_stopped_before_dns(
    store: Store,
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
    cloudflare_dns: CloudflareDns,
) -> None:
    _onboard(store, cloudflare_dns, _tenant("acme", "shop.acme.com"))
    with pytest.raises(StepFailedError, match=r"shop\.acme\.com"):
        _onboard(store, cloudflare_dns, _tenant("globex", "shop.acme.com"))
    assert _named(cloudflare_emulator, cloudflare_zone, f"globex.{ZONE}") == []
    assert [h["hostname"] for h in cloudflare_emulator.hostnames(cloudflare_zone)] == [
        "shop.acme.com"
    ]


def test_collision_fails_the_step_permanently_with_the_message(
    store: Store,
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
    cloudflare_dns: CloudflareDns,
) -> None:
    cloudflare_emulator.seed_record(cloudflare_zone, type="A", name="acme", content="192.0.2.1")
    with pytest.raises(StepFailedError, match="is taken by A acme"):
        _onboard(store, cloudflare_dns, _tenant("acme"))
    assert cloudflare_emulator.writes() == []


def test_describe_shows_live_custom_hostname_status_and_records_to_publish(
    store: Store,
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
    cloudflare_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", cloudflare_url)  # the SDK's own setting
    live = PlatformConfig.model_validate(
        {"cloudflare_zone_id": cloudflare_zone, "modes": {"cloudflare": "live"}}
    )
    acme = _tenant("acme", "shop.acme.com")
    store.record_tenant(acme.model_dump(mode="json"), fingerprint="f", source_file="", hosts={})
    session = service.Session(store)
    session.dns_provider(live).apply(dns_resources.desired(acme, live))

    dns = service.queries.describe(session, "acme", live)["dns"]
    (host,) = dns["custom_hostnames"]
    assert (dns["source"], dns["hostname"]) == ("cloudflare", f"acme.{ZONE}")
    assert (host["hostname"], host["status"], host["ssl_status"]) == (
        "shop.acme.com",
        "pending",
        "pending_validation",
    )
    owner = cloudflare_emulator.hostnames(cloudflare_zone)[0]["ownership_verification"]
    assert {
        "purpose": "ownership",
        "type": "TXT",
        "name": owner["name"],
        "value": owner["value"],
    } in host["publish"]
    # No platform given and none recorded: the render default, so the recorded status.
    assert service.queries.describe(session, "acme")["dns"]["source"] == "recorded"
