"""What the API server stores is what tenantctl compares with, against the fake apiserver.

The fake re-spells quantities (`0.5` -> `500m`, `8192Mi` -> `8Gi`) and drops a false
`globalDefault`, as kube-apiserver does; a tenant must still converge, verify clean and
cost zero writes on the next reconcile. Also the compute hardening: no ServiceAccount
token is mounted by default, and the quota bounds ephemeral and claimed storage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from controlplane.drivers import kubernetes as driver
from controlplane.engine.steps import StepContext
from controlplane.models import kubernetes as kube_models
from controlplane.models.platform import BackendModes, ClusterConfig, DriverMode, PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.resources.kubernetes import bundles, objects
from controlplane.steps import kubernetes as steps

PLATFORM = PlatformConfig(
    clusters={"shared": ClusterConfig(context="fake")},
    modes=BackendModes(kubernetes=DriverMode.LIVE),
)
NS = "tenant-acme"


@pytest.fixture
def backend(kube_apiserver: Any) -> Iterator[driver.KubernetesClusters]:
    yield driver.KubernetesClusters({"shared": "fake"}, str(kube_apiserver.kubeconfig))


def _ctx(limits: dict[str, Any] | None = None) -> StepContext:
    tenant = Tenant.model_validate(
        {
            "id": "acme",
            "name": "Acme",
            "tier": "standard",
            "region": "us-east-1",
            "limits": limits or {},
        }
    )
    return StepContext(tenant, PLATFORM, "op-1")


@pytest.mark.parametrize(
    ("limits", "want_cpu", "want_memory"),
    [
        ({"cpu": "0.5", "memory": "8192Mi"}, "500m", "8Gi"),
        ({"cpu": "1.5", "memory": "1024Mi"}, "1500m", "1Gi"),
        ({"cpu": "1000m", "memory": "1e3"}, "1", "1e3"),
    ],
)
def test_a_tenant_with_non_canonical_limits_converges_and_reconciles_with_zero_writes(
    limits: dict[str, Any],
    want_cpu: str,
    want_memory: str,
    backend: driver.KubernetesClusters,
    kube_apiserver: Any,
) -> None:
    ctx = _ctx(limits)
    step = steps.ComputeStep(backend)
    step.apply(ctx)
    assert step.verify(ctx) == []  # verify-after-apply passes
    hard = kube_apiserver.store.get("ResourceQuota", "tenant-quota", NS)["spec"]["hard"]
    assert (hard["limits.cpu"], hard["limits.memory"]) == (want_cpu, want_memory)

    kube_apiserver.reset_requests()
    step.apply(ctx)
    assert kube_apiserver.writes() == []
    assert step.differences(ctx) == []


def _converged_again_without_a_write(
    backend: driver.KubernetesClusters,
    kube_apiserver: Any,
    scope: kube_models.Scope,
    desired: list[dict[str, Any]],
) -> None:
    """Nothing to report, and a second converge changes and writes nothing."""
    assert backend.differences(scope, desired) == []
    kube_apiserver.reset_requests()
    assert backend.converge(scope, desired) == []
    assert kube_apiserver.writes() == []


def _quota(hard: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "sizes", "namespace": NS, "labels": {"team": "a"}},
        "spec": {"hard": hard},
    }


def test_the_driver_compares_quantities_by_value_not_by_spelling(
    backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    steps.ComputeStep(backend).apply(_ctx())
    scope = kube_models.Scope("shared", "acme", "sizes", {"team": "a"}, (("v1", "ResourceQuota"),))
    spelled = {"requests.cpu": "0.5", "limits.cpu": "1e3", "limits.memory": "8192Mi", "pods": 10}
    backend.converge(scope, [_quota(spelled)])
    stored = kube_apiserver.store.get("ResourceQuota", "sizes", NS)["spec"]["hard"]
    assert stored == {
        "requests.cpu": "500m",
        "limits.cpu": "1e3",
        "limits.memory": "8Gi",
        "pods": "10",
    }

    _converged_again_without_a_write(backend, kube_apiserver, scope, [_quota(spelled)])
    (bigger,) = backend.differences(scope, [_quota({**spelled, "limits.memory": "8193Mi"})])
    assert (bigger.path, bigger.want, bigger.have) == (
        ".spec.hard[limits.memory]",
        "'8193Mi'",
        "'8Gi'",
    )


def test_what_the_server_defaults_is_not_drift(
    backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    steps.ComputeStep(backend).apply(_ctx())
    scope = kube_models.Scope("shared", "acme", "sizes", {"team": "a"}, (("v1", "LimitRange"),))
    limits = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "sizes", "namespace": NS, "labels": {"team": "a"}},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "0.5", "memory": "1024Mi"}}]},
    }
    backend.converge(scope, [limits])
    (item,) = kube_apiserver.store.get("LimitRange", "sizes", NS)["spec"]["limits"]
    assert item["defaultRequest"] == {"cpu": "500m", "memory": "1Gi"}  # filled in by the server
    _converged_again_without_a_write(backend, kube_apiserver, scope, [limits])


def test_priority_classes_are_not_reapplied_by_every_compute_step(
    backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    ctx = _ctx()
    step = steps.ComputeStep(backend)
    step.apply(ctx)
    for klass in kube_apiserver.store.objects("PriorityClass"):
        assert "globalDefault" not in klass  # as a real server stores a false default
    kube_apiserver.reset_requests()
    step.apply(ctx)
    assert kube_apiserver.writes() == []
    platform_scope = kube_models.Scope(
        "shared",
        bundles.PLATFORM_DIR,
        bundles.PLATFORM,
        {objects.MANAGED_BY_LABEL: objects.MANAGED_BY, objects.COMPONENT_LABEL: bundles.PLATFORM},
        bundles.KINDS[bundles.PLATFORM],
    )
    assert backend.differences(platform_scope, bundles.priority_classes(PLATFORM)) == []


def test_no_service_account_mounts_a_token_and_the_quota_bounds_storage(
    backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    ctx = _ctx()
    step = steps.ComputeStep(backend)
    step.apply(ctx)
    store = kube_apiserver.store
    for name in ("default", "tenant-workload"):
        account = store.get("ServiceAccount", name, NS)
        assert account["automountServiceAccountToken"] is False, name
    hard = store.get("ResourceQuota", "tenant-quota", NS)["spec"]["hard"]
    assert {k: hard[k] for k in hard if "storage" in k} == {
        "requests.ephemeral-storage": "10Gi",
        "limits.ephemeral-storage": "20Gi",
        "requests.storage": "100Gi",
    }

    def mount(account: dict[str, Any]) -> None:
        account["automountServiceAccountToken"] = True

    store.edit("ServiceAccount", "default", NS, change=mount)
    (found,) = step.differences(ctx)
    assert (found.target, found.path) == (
        "ServiceAccount tenant-acme/default",
        ".automountServiceAccountToken",
    )
    step.apply(ctx)
    assert store.get("ServiceAccount", "default", NS)["automountServiceAccountToken"] is False
