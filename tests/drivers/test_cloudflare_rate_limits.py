"""The Cloudflare driver under rate limits and lost replies (issue 13, item 1).

A 429 or 5xx changed nothing on the server, so the driver sends the request again
itself, each try through the shared request budget and after the Retry-After the reply
names, instead of spending one of the step's engine attempts. A write whose reply was
lost (applied, then a 5xx or a dropped connection) is found and adopted on the retry.
The retry sleep is injected (`cloudflare_sleeps`): no test waits.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from controlplane import flows, testing
from controlplane.config import loading
from controlplane.drivers.cloudflare import CloudflareDns
from controlplane.engine.steps import StepContext
from controlplane.errors import CloudflareError
from controlplane.flows import onboarding
from controlplane.models.dns import TenantDns
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.resources import dns as dns_resources
from controlplane.steps.dns import DnsStep
from tests.fakes.cloudflare_api import DROPPED, CloudflareEmulator, Fault
from tests.fakes.cloudflare_fixtures import SDK_BASE_URL, TOKEN, ZONE

EXAMPLES = Path(__file__).resolve().parents[2] / "tenant-configs"
RUNS = 20
ENGINE_RUNS = 5


def _acme() -> TenantDns:
    tenant = Tenant.model_validate(
        {
            "id": "acme",
            "name": "Acme",
            "tier": "standard",
            "region": "us-east-1",
            "domains": {"custom": ["shop.acme.com"]},
        }
    )
    return dns_resources.desired(tenant, PlatformConfig())


def _posts(emulator: CloudflareEmulator, what: str) -> list[tuple[int, int]]:
    """(status, retry number) of every POST to `what` (`dns_records`, `custom_hostnames`)."""
    return [
        (c.status, c.retry_count) for c in emulator.calls if c.method == "POST" and what in c.path
    ]


def test_429_on_custom_hostname_create_is_retried_by_the_driver(
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
    cloudflare_dns: CloudflareDns,
    cloudflare_sleeps: list[float],
) -> None:
    # Before the fix this raised CloudflareError(retryable) and cost an engine attempt.
    cloudflare_emulator.inject(
        Fault(status=429, retry_after=7, method="POST", path_contains="custom_hostnames")
    )
    report = cloudflare_dns.apply(_acme())
    assert [c.action for c in report.changes] == ["create", "create"]
    assert [h["hostname"] for h in cloudflare_emulator.hostnames(cloudflare_zone)] == [
        "shop.acme.com"
    ]
    assert _posts(cloudflare_emulator, "custom_hostnames") == [(429, 0), (200, 1)]
    assert cloudflare_sleeps == [7.0]  # the Retry-After, exactly


@pytest.mark.parametrize("what", ["dns_records", "custom_hostnames"])
def test_write_applied_then_connection_dropped_is_adopted(
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
    cloudflare_dns: CloudflareDns,
    what: str,
) -> None:
    cloudflare_emulator.inject(
        Fault(method="POST", path_contains=what, after_write=True, drop=True)
    )
    report = cloudflare_dns.apply(_acme())
    assert [c.action for c in report.changes] == ["create", "create"]
    assert len(cloudflare_emulator.records(cloudflare_zone)) == 1
    assert len(cloudflare_emulator.hostnames(cloudflare_zone)) == 1
    duplicate = 400 if what == "dns_records" else 409  # 81057 / 1406: our own lost write
    assert _posts(cloudflare_emulator, what) == [(DROPPED, 0), (duplicate, 1)]
    assert cloudflare_dns.verify(_acme()) == []


def test_lost_reply_of_a_delete_is_not_a_failure(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str, cloudflare_dns: CloudflareDns
) -> None:
    cloudflare_dns.apply(_acme())
    for what in ("dns_records", "custom_hostnames"):
        cloudflare_emulator.inject(
            Fault(status=502, method="DELETE", path_contains=what, after_write=True)
        )
    changes = cloudflare_dns.destroy(_acme())
    assert [c.target for c in changes] == [f"CNAME/acme.{ZONE}", "custom-hostname/shop.acme.com"]
    assert cloudflare_emulator.records(cloudflare_zone) == []
    assert cloudflare_emulator.hostnames(cloudflare_zone) == []
    deletes = [c.status for c in cloudflare_emulator.calls if c.method == "DELETE"]
    assert deletes == [502, 404, 502, 404]  # each retry finds it gone already


def test_5xx_on_every_try_goes_to_the_engine_after_the_driver_retries(
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
    cloudflare_dns: CloudflareDns,
    cloudflare_sleeps: list[float],
) -> None:
    cloudflare_emulator.inject(Fault(status=503, times=None))
    with pytest.raises(CloudflareError) as caught:
        cloudflare_dns.apply(_acme())
    assert (caught.value.retryable, caught.value.retry_after) == (True, None)
    assert "HTTP 503" in caught.value.message
    assert [c.retry_count for c in cloudflare_emulator.calls] == [0, 1, 2, 3, 4]
    assert len(cloudflare_sleeps) == 4 and all(0 < s <= 8 for s in cloudflare_sleeps)
    assert cloudflare_sleeps[-1] > cloudflare_sleeps[0]  # backing off
    assert cloudflare_emulator.records(cloudflare_zone) == []


def test_a_long_retry_after_is_left_to_the_engine(
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_dns: CloudflareDns,
    cloudflare_sleeps: list[float],
) -> None:
    cloudflare_emulator.inject(Fault(status=429, retry_after=300))
    with pytest.raises(CloudflareError) as caught:
        cloudflare_dns.apply(_acme())
    assert (caught.value.retryable, caught.value.retry_after) == (True, 300.0)
    assert (len(cloudflare_emulator.calls), cloudflare_sleeps) == (1, [])


@dataclass
class _CountingBudget:
    """A `RequestBudget` that grants everything and counts (the shared limit's view)."""

    taken: int = 0
    penalties: list[float] = field(default_factory=list)

    def acquire(self) -> None:
        self.taken += 1

    def penalise(self, seconds: float) -> None:
        self.penalties.append(seconds)


def test_every_retry_takes_a_token_and_every_429_drains_the_budget(
    cloudflare_emulator: CloudflareEmulator, cloudflare_zone: str, cloudflare_token: str
) -> None:
    del cloudflare_token
    budget = _CountingBudget()
    driver = CloudflareDns(
        cloudflare_zone,
        budget=budget,
        base_url=SDK_BASE_URL,
        transport=httpx.WSGITransport(app=cloudflare_emulator),
        sleep=lambda _seconds: None,
    )
    cloudflare_emulator.inject(Fault(status=429, every=2, times=None, retry_after=2))
    driver.apply(_acme())
    statuses = Counter(c.status for c in cloudflare_emulator.calls)
    assert statuses[429] >= 2
    assert budget.taken == len(cloudflare_emulator.calls)
    assert budget.penalties == [2.0] * statuses[429]


# --- the example tenants, 20 times, under "429 every 3rd, 500 every 5th" -----------------


def _live_examples(zone_id: str) -> tuple[PlatformConfig, list[Tenant]]:
    """tenant-configs/ with its platform.yaml switched to live Cloudflare on `zone_id`."""
    platform = loading.load_platform(EXAMPLES / "platform.yaml")
    settings = platform.model_dump(mode="json")
    settings["modes"]["cloudflare"] = "live"
    live = PlatformConfig.model_validate({**settings, "cloudflare_zone_id": zone_id})
    return live, [source.tenant for source in loading.load_tenants([EXAMPLES], live)]


def _faulty_account(
    monkeypatch: pytest.MonkeyPatch, *, lost_replies: bool, run: int
) -> tuple[CloudflareEmulator, CloudflareDns]:
    """A fresh account failing every 3rd request with 429 and every 5th with 500.

    Each `run` shifts both schedules (15 distinct phases), so the faults land on
    different requests from run to run: reads, record writes, hostname writes, pages.
    """
    emulator = CloudflareEmulator(tokens=[TOKEN])
    zone = emulator.add_zone(ZONE)
    emulator.inject(Fault(status=429, every=3, times=None, seen=run % 3))  # Retry-After: 1
    emulator.inject(
        Fault(status=500, every=5, times=None, after_write=lost_replies, seen=run // 3 % 5)
    )
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    driver = CloudflareDns(
        zone,
        base_url=SDK_BASE_URL,
        transport=httpx.WSGITransport(app=emulator),
        sleep=lambda _seconds: None,
    )
    return emulator, driver


def _assert_one_of_each(
    emulator: CloudflareEmulator, driver: CloudflareDns, live: tuple[PlatformConfig, list[Tenant]]
) -> None:
    """Exactly one record per tenant hostname, one custom hostname per custom domain."""
    platform, tenants = live
    names = Counter(r["name"] for r in emulator.records(driver.zone_id))
    want_names = {dns_resources.desired(t, platform).origin for t in tenants}
    assert names == dict.fromkeys(want_names, 1)
    hosts = sorted(h["hostname"] for h in emulator.hostnames(driver.zone_id))
    assert hosts == sorted(h for t in tenants for h in t.domains.custom)
    assert all(driver.verify(dns_resources.desired(t, platform)) == [] for t in tenants)


def _onboard_dns_under_faults(
    monkeypatch: pytest.MonkeyPatch, *, lost_replies: bool, run: int
) -> Counter[tuple[str, int]]:
    """One run: a fresh account, every example tenant's `dns` step once; (method, status)s."""
    emulator, driver = _faulty_account(monkeypatch, lost_replies=lost_replies, run=run)
    live = _live_examples(driver.zone_id)
    step = DnsStep(driver)
    for tenant in live[1]:  # a raise here would be an engine attempt spent: the bug
        step.apply(StepContext(tenant, live[0], operation_id=f"op-{tenant.id}"))
    _assert_one_of_each(emulator, driver, live)
    return Counter((c.method, c.status) for c in emulator.calls)


@pytest.mark.parametrize("lost_replies", [False, True], ids=["500-before-write", "500-after-write"])
def test_example_tenants_onboard_dns_twenty_times_under_periodic_faults(
    monkeypatch: pytest.MonkeyPatch, lost_replies: bool
) -> None:
    seen: Counter[tuple[str, int]] = Counter()
    for run in range(RUNS):
        seen += _onboard_dns_under_faults(monkeypatch, lost_replies=lost_replies, run=run)
    # The faults really happened, on reads and on writes (20 runs: 200+ 429s, 100+ 500s).
    assert min(seen["GET", 429], seen["POST", 429], seen["GET", 500]) >= RUNS
    assert seen["POST", 500] >= RUNS // 4
    if lost_replies:  # writes that landed, whose repeats were answered "duplicate"
        assert seen["POST", 400] + seen["POST", 409] >= RUNS // 4


@pytest.mark.parametrize("run", range(ENGINE_RUNS))
def test_example_tenants_onboard_through_the_engine_without_spending_attempts(
    monkeypatch: pytest.MonkeyPatch, run: int
) -> None:
    emulator, driver = _faulty_account(monkeypatch, lost_replies=True, run=run * 4)
    platform, tenants = live = _live_examples(driver.zone_id)
    store = testing.MemoryStore()
    steps = onboarding.steps(flows.Dependencies(registry=store, dns_provider=driver))
    for tenant in tenants:
        outcome = testing.run_operation(store, StepContext(tenant, platform, ""), steps)
        assert outcome.status == "succeeded", outcome.message
        records = store.load_steps(outcome.operation_id)
        assert {name: r.attempts for name, r in records.items()} == dict.fromkeys(records, 1)
    _assert_one_of_each(emulator, driver, live)
