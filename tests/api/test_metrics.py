"""`/metrics`: state-store counts at scrape time, this replica's resolver series."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from controlplane.models.operations import AuditEntry, StepName, StepRecord, StepStatus
from controlplane.state.budgets import PostgresRequestBudget
from tests.api.conftest import Api


def _samples(served: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = served.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _operation(served: Api, tenant_id: str, status: str, failed_step: str = "") -> None:
    store = served.session.store
    lease = store.acquire(tenant_id, served.session.holder, wait=1)
    begun = store.begin_operation("onboard", "fp", context={}, lease=lease)
    if failed_step:
        step = StepRecord(begun.id, StepName(failed_step), 0, StepStatus.FAILED, attempts=5)
        store.save_step(step, lease)
    store.finish_operation(begun.id, status, "", lease, AuditEntry("test", tenant_id, {}))
    store.release(lease)


def test_tenants_operations_and_resolver_series(served: Api) -> None:
    served.record("bluebird-books.yaml")
    served.record("corner-cafe.yaml", status="suspended")
    served.record("acme-retail.yaml")
    _operation(served, "bluebird", "succeeded")
    _operation(served, "tenant-100", "failed", failed_step="database")
    budget = PostgresRequestBudget(served.session.store.engine, "cloudflare", limit=400)
    budget.try_acquire()
    auth = served.as_(served.viewer)
    for host in ("bluebird.tenants.example.com", "shop.acme.com", "nobody.example"):
        served.client.get("/v1/resolve", params={"host": host}, headers=auth)
    served.client.get(
        "/v1/resolve", params={"host": "cornercafe.tenants.example.com"}, headers=auth
    )
    samples = _samples(served)
    tenants = {labels: v for (name, labels), v in samples.items() if name == "tenantctl_tenants"}
    assert tenants == {
        (("status", "active"), ("tier", "enterprise")): 1,
        (("status", "active"), ("tier", "standard")): 1,
        (("status", "suspended"), ("tier", "standard")): 1,
    }
    assert samples[("tenantctl_operations", (("kind", "onboard"), ("status", "succeeded")))] == 1
    assert samples[("tenantctl_operations", (("kind", "onboard"), ("status", "failed")))] == 1
    failures = ("tenantctl_step_failures", (("kind", "onboard"), ("step", "database")))
    assert samples[failures] == 1
    routed = ("tenantctl_resolver_requests_total", (("outcome", "routed"),))
    assert samples[routed] == 2
    assert samples[("tenantctl_resolver_requests_total", (("outcome", "unknown"),))] == 1
    assert samples[("tenantctl_resolver_requests_total", (("outcome", "suspended"),))] == 1
    assert samples[("tenantctl_resolver_requests_total", (("outcome", "deleted"),))] == 0
    assert samples[("tenantctl_resolver_latency_seconds_count", ())] == 4
    left = samples[("tenantctl_request_budget_tokens", (("budget", "cloudflare"),))]
    assert 98 <= left < 100  # capacity 100, one taken (and a hair refilled since)
    buckets = [v for (name, _), v in samples.items() if name.endswith("_bucket")]
    assert max(buckets) == 4


def test_label_sets_are_bounded_no_tenant_or_host_labels(served: Api) -> None:
    served.record("bluebird-books.yaml")
    served.client.get(
        "/v1/resolve", params={"host": "x.example"}, headers=served.as_(served.viewer)
    )
    keys = {key for (_, labels) in _samples(served) for key, _ in labels}
    assert keys <= {"tier", "status", "kind", "step", "outcome", "budget", "le"}
