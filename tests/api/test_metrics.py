"""`/metrics`: state-store counts at scrape time, this replica's resolver series."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from controlplane import service
from controlplane.models.operations import AuditEntry, StepName, StepRecord, StepStatus
from controlplane.state.budgets import PostgresRequestBudget
from tests.api.conftest import Api
from tests.conftest import EXAMPLES
from tests.lifecycle.conftest import write_tenant


def _samples(served: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = served.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _operation(
    served: Api, tenant_id: str, status: str, failed_step: str = "", kind: str = "onboard"
) -> None:
    store = served.session.store
    lease = store.acquire(tenant_id, served.session.holder, wait=1)
    begun = store.begin_operation(kind, "fp", context={}, lease=lease)
    if failed_step:
        start = datetime.now(UTC)
        step = StepRecord(
            begun.id,
            StepName(failed_step),
            0,
            StepStatus.FAILED,
            attempts=5,
            started_at=start,
            finished_at=start + timedelta(seconds=7),
        )
        store.save_step(step, lease)
    store.finish_operation(begun.id, status, "", lease, AuditEntry("test", tenant_id, {}))
    store.release(lease)


def test_tenants_operations_and_resolver_series(served: Api) -> None:
    served.record("bluebird-books.yaml")
    served.record("corner-cafe.yaml", status="suspended")
    served.record("acme-retail.yaml")
    _operation(served, "bluebird", "succeeded")
    _operation(served, "tenant-100", "failed", failed_step="database")
    limit = service.inputs.load([], EXAMPLES / "platform.yaml")[0].cloudflare_request_budget
    budget = PostgresRequestBudget(served.session.store.engine, "cloudflare", limit=limit)
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
    # One taken from a full bucket, refilled since (a fraction of a token per second).
    assert budget.capacity - 1 < left <= budget.capacity
    buckets = [
        v for (n, _), v in samples.items() if n == "tenantctl_resolver_latency_seconds_bucket"
    ]
    assert max(buckets) == 4
    step = (("kind", "onboard"), ("step", "database"))
    assert samples[("tenantctl_step_duration_seconds_count", step)] == 1
    assert samples[("tenantctl_step_duration_seconds_sum", step)] == 7
    assert (
        samples[("tenantctl_step_duration_seconds_bucket", (*step[:1], ("le", "5.0"), step[1]))]
        == 0
    )
    assert (
        samples[("tenantctl_step_duration_seconds_bucket", (*step[:1], ("le", "10.0"), step[1]))]
        == 1
    )
    assert samples[("tenantctl_operation_duration_seconds_count", (("kind", "onboard"),))] == 2


def test_per_tenant_drift_and_last_reconcile(served: Api) -> None:
    served.record("bluebird-books.yaml")
    served.record("acme-retail.yaml")
    served.record("corner-cafe.yaml")
    _operation(served, "bluebird", "succeeded")
    _operation(served, "tenant-100", "succeeded")
    _operation(served, "tenant-100", "failed", kind="reconcile")  # drift found, not repaired
    samples = _samples(served)
    drift = {dict(k)["tenant"]: v for (n, k), v in samples.items() if n == "tenantctl_tenant_drift"}
    assert drift == {"bluebird": 0, "corner-cafe": 0, "tenant-100": 1}
    name = "tenantctl_tenant_last_reconcile_timestamp_seconds"
    last = {dict(k)["tenant"]: v for (n, k), v in samples.items() if n == name}
    assert set(last) == {"bluebird", "tenant-100"}  # corner-cafe never converged
    finished = served.session.store.operations_of("tenant-100", limit=2)[1]["finished_at"]
    assert last["tenant-100"] == pytest.approx(finished.timestamp())
    _operation(served, "tenant-100", "succeeded", kind="reconcile")  # repaired
    assert _samples(served)[("tenantctl_tenant_drift", (("tenant", "tenant-100"),))] == 0


@pytest.mark.slow
def test_durations_after_real_operations_through_the_api(served: Api) -> None:
    operator = served.as_(served.operator)
    submissions = served.client.app.state.services.submissions  # type: ignore[attr-defined]
    created = served.client.post(
        "/v1/tenants",
        content=(EXAMPLES / "bluebird-books.yaml").read_bytes(),
        headers={**operator, "Content-Type": "application/yaml"},
    )
    assert created.status_code == 202, created.text
    submissions.drain()
    assert served.client.post("/v1/tenants/bluebird/suspend", headers=operator).status_code == 202
    submissions.drain()
    samples = _samples(served)
    viewer = served.as_(served.viewer)
    for response in (created,):
        operation = served.client.get(response.json()["operation_url"], headers=viewer).json()
        assert operation["status"] == "succeeded"
    for kind in ("onboard", "suspend"):
        assert samples[("tenantctl_operation_duration_seconds_count", (("kind", kind),))] == 1
        inf = samples[
            ("tenantctl_operation_duration_seconds_bucket", (("kind", kind), ("le", "+Inf")))
        ]
        assert inf == 1
    steps = {
        dict(k)["step"]
        for (n, k), v in samples.items()
        if n == "tenantctl_step_duration_seconds_count" and dict(k)["kind"] == "onboard" and v == 1
    }
    assert {"record", "database", "activate"} <= steps
    onboarded = served.session.store.operations_of("bluebird", limit=2)[1]
    name = "tenantctl_tenant_last_reconcile_timestamp_seconds"
    last = samples[(name, (("tenant", "bluebird"),))]
    assert last == pytest.approx(onboarded["finished_at"].timestamp())
    assert samples[("tenantctl_tenant_drift", (("tenant", "bluebird"),))] == 0


@pytest.mark.slow
def test_repairs_of_real_reconcile_passes_count_up_by_step(served: Api, tmp_path: Path) -> None:
    folder = tmp_path / "fleet"
    folder.mkdir()
    shutil.copy(EXAMPLES / "platform.yaml", folder / "platform.yaml")
    for tenant_id in ("mend-a", "mend-b"):
        write_tenant(folder, tenant_id)
    source = service.reconciling.Directory((folder,))

    def reconcile() -> dict[str, str]:
        report = service.reconciling.reconcile(served.session, source)
        return {o.tenant_id: o.action for o in report.outcomes}

    def repairs() -> dict[str, float]:
        name = "tenantctl_reconcile_repairs_total"
        return {dict(k)["step"]: v for (n, k), v in _samples(served).items() if n == name}

    assert reconcile() == {"mend-a": "applied", "mend-b": "applied"}
    assert repairs() == {}  # onboarding repairs nothing
    out = tmp_path / "out"  # the render mode folder of the API's session
    for tenant_id in ("mend-a", "mend-b"):
        (out / tenant_id / "dns.yaml").unlink()
    network = out / "mend-a" / "kubernetes" / "network.yaml"
    network.write_text(network.read_text() + "---\nkind: NetworkPolicy\n")  # an allow-all
    assert reconcile() == {"mend-a": "repaired", "mend-b": "repaired"}
    assert repairs() == {"dns": 2, "network": 1}
    (out / "mend-b" / "dns.yaml").unlink()
    assert reconcile() == {"mend-a": "unchanged", "mend-b": "repaired"}
    assert repairs() == {"dns": 3, "network": 1}
    assert reconcile() == {"mend-a": "unchanged", "mend-b": "unchanged"}
    assert repairs() == {"dns": 3, "network": 1}


def test_label_sets_are_bounded_no_tenant_or_host_labels(served: Api) -> None:
    served.record("bluebird-books.yaml")
    served.client.get(
        "/v1/resolve", params={"host": "x.example"}, headers=served.as_(served.viewer)
    )
    samples = _samples(served)
    keys = {key for (_, labels) in samples for key, _ in labels}
    assert keys <= {"tier", "status", "kind", "step", "outcome", "budget", "le", "tenant"}
    # The tenant label is on the two per-tenant gauges only (docs/api.md says why).
    by_tenant = {name for name, labels in samples if "tenant" in dict(labels)}
    assert by_tenant <= {
        "tenantctl_tenant_drift",
        "tenantctl_tenant_last_reconcile_timestamp_seconds",
    }
