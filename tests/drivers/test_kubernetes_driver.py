"""The Kubernetes driver against the fake kube-apiserver, through the official client.

Converge = list (one labelled list per kind), compare in memory, then write only what
differs; drift of our fields is reverted, contests with other appliers are reported,
other managers' fields and objects are left alone.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controlplane.drivers import kubernetes as driver
from controlplane.engine.steps import StepContext
from controlplane.errors import ConflictError, KubernetesError
from controlplane.models import kubernetes as kube_models
from controlplane.models.platform import BackendModes, ClusterConfig, DriverMode, PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.resources import rendering
from controlplane.resources.kubernetes import bundles, objects
from controlplane.steps import kubernetes as steps

PLATFORM = PlatformConfig(
    clusters={
        "shared": ClusterConfig(context="fake"),
        "premium-globex": ClusterConfig(context="fake-premium"),
    },
    modes=BackendModes(kubernetes=DriverMode.LIVE),
)
KIND_COUNT = sum(len(kinds) for kinds in bundles.KINDS.values())


def _tenant(tenant_id: str = "acme", tier: str = "enterprise") -> Tenant:
    return Tenant.model_validate(
        {"id": tenant_id, "name": tenant_id.title(), "tier": tier, "region": "us-east-1"}
    )


def _ctx(tenant: Tenant) -> StepContext:
    return StepContext(tenant, PLATFORM, "op-1")


def _scope(tenant: Tenant, component: str) -> kube_models.Scope:
    return steps.scope_for(_ctx(tenant), component)


@pytest.fixture
def backend(kube_apiserver: Any) -> Iterator[driver.KubernetesClusters]:
    """Live driver on both fake clusters, through the kubeconfig's contexts."""
    yield driver.KubernetesClusters(
        {name: c.context for name, c in PLATFORM.clusters.items()},
        str(kube_apiserver.kubeconfig),
        namespace_timeout=10,
    )


def _onboard(backend: driver.KubernetesClusters, tenant: Tenant) -> None:
    ctx = _ctx(tenant)
    for step in (steps.ComputeStep(backend), steps.ConfigStep(backend), steps.NetworkStep(backend)):
        step.apply(ctx)


def _desired(tenant: Tenant) -> list[dict[str, Any]]:
    return [m for c in bundles.COMPONENTS for m in bundles.desired(tenant, PLATFORM, c)]


def _stored(store: Any, manifest: dict[str, Any]) -> dict[str, Any] | None:
    meta = manifest["metadata"]
    found: dict[str, Any] | None = store.get(
        manifest["kind"], meta["name"], meta.get("namespace", "")
    )
    return found


def _managers(obj: dict[str, Any]) -> dict[str, str]:
    return {e["manager"]: e["operation"] for e in obj["metadata"].get("managedFields", [])}


# --- create and no-op -------------------------------------------------------------------


def test_onboarding_applies_every_object_with_inventory_labels(
    backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    tenant = _tenant()
    _onboard(backend, tenant)
    for manifest in _desired(tenant):
        live = _stored(kube_apiserver.store, manifest)
        assert live is not None, manifest["metadata"]["name"]
        labels = live["metadata"]["labels"]
        assert labels[objects.TENANT_LABEL] == "acme"
        assert labels[objects.MANAGED_BY_LABEL] == "tenantctl"
        assert _managers(live) == {"tenantctl": "Apply"}
    classes = kube_apiserver.store.objects("PriorityClass")
    assert {c["metadata"]["name"] for c in classes} >= {"tenant-enterprise", "tenant-standard"}


def test_second_apply_makes_zero_writes_and_one_list_per_kind(
    backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    tenant = _tenant()
    _onboard(backend, tenant)
    kube_apiserver.reset_requests()
    _onboard(backend, tenant)
    assert kube_apiserver.writes() == []
    gets = [r for r in kube_apiserver.requests if r.method == "GET"]
    assert len(gets) == KIND_COUNT
    assert all("labelSelector" in r.query for r in gets)


def test_a_snapshot_lists_each_kind_once_for_any_number_of_tenants(
    backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    tenants = [_tenant(f"t{i}", "standard") for i in range(6)]
    for tenant in tenants:
        _onboard(backend, tenant)
    kube_apiserver.reset_requests()
    with backend.snapshot({objects.MANAGED_BY_LABEL: objects.MANAGED_BY}):
        for tenant in tenants:
            _onboard(backend, tenant)
            assert steps.ComputeStep(backend).verify(_ctx(tenant)) == []
    assert kube_apiserver.writes() == []
    assert len(kube_apiserver.requests) == KIND_COUNT


def test_a_snapshot_lists_every_tenant_kind_when_a_cluster_is_first_observed(
    backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    """The lists a pass needs on a cluster are fetched together (in flight at once), so
    the first scope waits for the slowest list once, not for each step's lists in turn."""
    tenant = _tenant("t0", "standard")
    _onboard(backend, tenant)
    kube_apiserver.reset_requests()
    with backend.snapshot(steps.INVENTORY, steps.TENANT_KINDS):
        assert steps.ComputeStep(backend).verify(_ctx(tenant)) == []
        listed = {r.path.rsplit("/", 1)[-1] for r in kube_apiserver.requests}
        assert listed == {driver.KINDS[k].plural for k in steps.TENANT_KINDS}
        kube_apiserver.reset_requests()
        assert steps.ConfigStep(backend).verify(_ctx(tenant)) == []
        assert steps.NetworkStep(backend).verify(_ctx(tenant)) == []
    assert kube_apiserver.requests == []  # the other steps read the snapshot
    assert len(steps.TENANT_KINDS) == KIND_COUNT - len(bundles.KINDS[bundles.PLATFORM])


def test_writes_inside_a_snapshot_are_seen_by_their_own_scope_only(
    backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    """The snapshot's lists are grouped by the labels scopes select on: a create and a
    prune inside it land in (and leave) the writer's group, nobody else's."""
    kept, removed, added = (_tenant(f"s{i}", "standard") for i in range(3))
    for tenant in (kept, removed):
        _onboard(backend, tenant)
    kube_apiserver.reset_requests()
    network = steps.NetworkStep(backend)
    with backend.snapshot({objects.MANAGED_BY_LABEL: objects.MANAGED_BY}):
        assert [network.verify(_ctx(t)) for t in (kept, removed)] == [[], []]
        _onboard(backend, added)
        backend.remove(_scope(removed, bundles.NETWORK))
        assert network.verify(_ctx(added)) == []
        assert network.verify(_ctx(kept)) == []
        gone = network.differences(_ctx(removed))
        assert gone and all(d.path == "." and d.have == "<absent>" for d in gone)
        assert backend.observe(_scope(removed, bundles.NETWORK)) == {}
    gets = [r for r in kube_apiserver.requests if r.method == "GET"]
    assert len(gets) == KIND_COUNT  # every read above came from the snapshot's lists


def test_premium_objects_go_to_the_dedicated_cluster_only(
    backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    tenant = _tenant("globex", "premium")
    _onboard(backend, tenant)
    assert kube_apiserver.premium.store.get("Namespace", "tenant-globex") is not None
    assert kube_apiserver.store.get("Namespace", "tenant-globex") is None
    assert kube_apiserver.premium.store.objects("PeerAuthentication", "tenant-globex")


# --- drift, conflicts and other managers ------------------------------------------------


def _set_config_value(obj: dict[str, Any]) -> None:
    obj["data"]["tenant.name"] = "Hijacked"


def _drop_tier_label(obj: dict[str, Any]) -> None:
    del obj["metadata"]["labels"][objects.TIER_LABEL]


@dataclass(frozen=True)
class DriftCase:
    reason: str
    kind: str
    name: str
    edit: Callable[[dict[str, Any]], None]
    want_path: str
    want_owner: str


@pytest.mark.parametrize(
    "case",
    [
        DriftCase(
            "kubectl edit of a ConfigMap value we manage",
            "ConfigMap",
            "tenant-config",
            _set_config_value,
            ".data[tenant.name]",
            "kubectl-edit",
        ),
        DriftCase(
            "kubectl edit removing a label we manage (a removed field has no owner)",
            "ConfigMap",
            "tenant-config",
            _drop_tier_label,
            ".metadata.labels[tenantctl.io/tier]",
            "",
        ),
    ],
    ids=lambda c: c.reason,
)
def test_manual_edit_is_reported_by_diff_and_reverted_by_apply(
    case: DriftCase, backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    tenant = _tenant()
    _onboard(backend, tenant)
    kube_apiserver.store.edit(case.kind, case.name, "tenant-acme", change=case.edit)
    step = steps.ConfigStep(backend)

    found = step.differences(_ctx(tenant))
    assert [(d.path, d.owner) for d in found] == [(case.want_path, case.want_owner)]
    assert step.verify(_ctx(tenant)) == [str(found[0])]

    step.apply(_ctx(tenant))
    assert step.differences(_ctx(tenant)) == []
    live = kube_apiserver.store.get(case.kind, case.name, "tenant-acme")
    assert live["data"]["tenant.name"] == "Acme"
    assert live["metadata"]["labels"][objects.TIER_LABEL] == "enterprise"


def test_a_value_another_applier_owns_is_a_conflict_unless_forced(
    backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    tenant = _tenant()
    _onboard(backend, tenant)
    contested = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "tenant-config", "namespace": "tenant-acme"},
        "data": {"tenant.region": "eu-west-1"},
    }
    kube_apiserver.store.apply(contested, manager="argocd-controller", force=True)
    scope, desired = _scope(tenant, "config"), bundles.config(tenant, PLATFORM)

    (difference,) = backend.differences(scope, desired)
    assert (difference.path, difference.owner, difference.contested) == (
        ".data[tenant.region]",
        "argocd-controller",
        True,
    )
    with pytest.raises(ConflictError, match=r"argocd-controller.*force_conflicts"):
        backend.converge(scope, desired)

    backend.converge(scope, desired, force=True)
    live = kube_apiserver.store.get("ConfigMap", "tenant-config", "tenant-acme")
    assert live["data"]["tenant.region"] == "us-east-1"
    assert backend.differences(scope, desired) == []


def test_fields_and_objects_of_other_managers_are_left_alone(
    backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    tenant = _tenant()
    _onboard(backend, tenant)
    store = kube_apiserver.store

    def annotate(obj: dict[str, Any]) -> None:
        obj["metadata"]["labels"]["team"] = "payments"
        obj["data"]["extra"] = "theirs"

    store.edit("ConfigMap", "tenant-config", "tenant-acme", change=annotate, manager="helm")
    store.put(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "app-settings", "namespace": "tenant-acme"},
            "data": {"k": "v"},
        }
    )
    step = steps.ConfigStep(backend)
    assert step.differences(_ctx(tenant)) == []

    renamed = _ctx(tenant.model_copy(update={"name": "Acme Two"}))
    step.apply(renamed)
    live = store.get("ConfigMap", "tenant-config", "tenant-acme")
    assert live["data"]["tenant.name"] == "Acme Two"
    assert (live["metadata"]["labels"]["team"], live["data"]["extra"]) == ("payments", "theirs")
    assert store.get("ConfigMap", "app-settings", "tenant-acme") is not None


# --- prune and removal ------------------------------------------------------------------


def test_objects_dropped_from_the_desired_set_are_pruned(
    backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    tenant = _tenant()
    _onboard(backend, tenant)
    scope = _scope(tenant, "network")
    desired = [
        m
        for m in bundles.network(tenant, PLATFORM)
        if m["metadata"]["name"] != "allow-monitoring" and m["kind"] != "PeerAuthentication"
    ]
    # Labelled like ours but created by someone else: never ours to delete.
    impostor = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "allow-debug",
            "namespace": "tenant-acme",
            "labels": dict(scope.selector),
        },
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    kube_apiserver.store.put(impostor, manager="kubectl-create")
    kube_apiserver.reset_requests()

    changes = backend.converge(scope, desired)

    deleted = sorted(c.target for c in changes if c.action == "delete")
    assert deleted == [
        "NetworkPolicy tenant-acme/allow-monitoring",
        "PeerAuthentication tenant-acme/default",
    ]
    assert [r.method for r in kube_apiserver.writes()] == ["DELETE", "DELETE"]
    store = kube_apiserver.store
    assert store.get("NetworkPolicy", "allow-monitoring", "tenant-acme") is None
    assert store.get("NetworkPolicy", "allow-debug", "tenant-acme") is not None


def test_removing_compute_deletes_the_namespace_and_waits_until_it_is_gone(
    backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    tenant = _tenant()
    _onboard(backend, tenant)
    for component in reversed(bundles.COMPONENTS):
        backend.remove(_scope(tenant, component))
    store = kube_apiserver.store
    assert store.get("Namespace", "tenant-acme") is None
    assert store.objects("ConfigMap", "tenant-acme") == []
    assert store.objects("PriorityClass")  # platform objects stay


# --- secrets and errors -----------------------------------------------------------------


class _Passwords:
    def password(self, tenant_id: str, purpose: str = "db-app") -> str:
        return f"pw-{purpose}-{tenant_id}"


def test_live_secret_holds_credentials_and_diff_never_shows_them(
    backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    tenant = _tenant()
    outputs = {"database": {"app_role": "tenant_acme_app", "database": "tenant_acme"}}
    ctx = StepContext(tenant, PLATFORM, "op", outputs=outputs)
    steps.ComputeStep(backend).apply(ctx)
    step = steps.ConfigStep(backend, passwords=_Passwords())
    step.apply(ctx)
    live = kube_apiserver.store.get("Secret", "tenant-database", "tenant-acme")
    assert base64.b64decode(live["data"]["password"]).decode() == "pw-db-app-acme"
    assert base64.b64decode(live["data"]["username"]).decode() == "tenant_acme_app"

    kube_apiserver.store.edit(
        "Secret",
        "tenant-database",
        "tenant-acme",
        change=lambda o: o["data"].update(password=base64.b64encode(b"leaked").decode()),
    )
    (difference,) = step.differences(ctx)
    assert (difference.want, difference.have) == ("<redacted>", "<redacted>")
    assert "pw-db-app" not in str(difference) and "bGVha2Vk" not in str(difference)
    assert "pw-db-app" not in step.fingerprint(ctx)


def test_an_unreachable_api_server_is_a_retryable_error(kube_apiserver: Any) -> None:
    kube_apiserver.server.stop()
    backend = driver.KubernetesClusters(
        {"shared": "fake"}, str(kube_apiserver.kubeconfig), request_timeout=2
    )
    with pytest.raises(KubernetesError, match="unreachable") as caught:
        backend.converge(_scope(_tenant(), "config"), bundles.config(_tenant(), PLATFORM))
    assert caught.value.retryable


def test_an_unknown_kube_context_names_the_cluster(kube_apiserver: Any) -> None:
    backend = driver.KubernetesClusters({"shared": "no-such"}, str(kube_apiserver.kubeconfig))
    with pytest.raises(KubernetesError, match="cluster 'shared': cannot load kube context"):
        backend.differences(_scope(_tenant(), "config"), [])


# --- render mode ------------------------------------------------------------------------


def test_render_backend_writes_what_tenantctl_render_writes(tmp_path: Path) -> None:
    backend = driver.RenderedClusters(tmp_path, objects.to_yaml, bundles.kustomization)
    tenant = _tenant()
    render = PLATFORM.model_copy(update={"modes": BackendModes()})
    ctx = StepContext(tenant, render, "op")
    config_step = steps.ConfigStep(backend, passwords=_Passwords())
    for step in (steps.ComputeStep(backend), config_step, steps.NetworkStep(backend)):
        step.apply(ctx)
        assert step.verify(ctx) == []
    kubernetes_files = {
        p: t
        for p, t in rendering.tenant_files(tenant, render).items()
        if p.startswith("kubernetes/")
    }
    assert kubernetes_files  # dns.yaml is the dns step's file, written by its own backend
    for path, text in kubernetes_files.items():
        assert (tmp_path / "acme" / path).read_text() == text
    for path, text in rendering.platform_files(render).items():
        assert (tmp_path / "_platform" / path).read_text() == text
    assert "kind: Secret\n" not in (tmp_path / "acme/kubernetes/config.yaml").read_text()

    again = backend.converge(_scope(tenant, "network"), bundles.network(tenant, render))
    assert again == []
    backend.remove(_scope(tenant, "network"))
    kustomization = (tmp_path / "acme/kubernetes/kustomization.yaml").read_text()
    assert "network.yaml" not in kustomization


def test_tenants_rendered_in_parallel_share_the_platform_files_safely(tmp_path: Path) -> None:
    """Every tenant's compute step writes `_platform/`: parallel writers must not collide."""
    backend = driver.RenderedClusters(tmp_path, objects.to_yaml, bundles.kustomization)
    render = PLATFORM.model_copy(update={"modes": BackendModes()})
    tenants = [_tenant(f"t{i:02d}") for i in range(24)]

    def compute(tenant: Tenant) -> list[str]:
        ctx = StepContext(tenant, render, "op")
        step = steps.ComputeStep(backend)
        step.apply(ctx)
        return step.verify(ctx)

    with ThreadPoolExecutor(max_workers=8) as pool:
        problems = list(pool.map(compute, tenants))
    assert problems == [[]] * len(tenants)
    for path, text in rendering.platform_files(render).items():
        assert (tmp_path / "_platform" / path).read_text() == text
    assert not list(tmp_path.rglob("*.tmp"))  # no temporary file left behind


def test_plan_lists_creates_updates_and_deletes_per_object_without_writing(
    backend: driver.KubernetesClusters, kube_apiserver: Any
) -> None:
    tenant = _tenant("acme", "enterprise")
    step = steps.NetworkStep(backend)
    before = step.plan(_ctx(tenant))
    assert {c.action for c in before} == {"create"}
    assert len(before) == len(bundles.network(tenant, PLATFORM))

    _onboard(backend, tenant)
    assert [c.action for c in step.plan(_ctx(tenant))] == ["noop"]

    def widen(policy: dict[str, Any]) -> None:
        policy["spec"]["ingress"] = [{}]

    kube_apiserver.store.edit("NetworkPolicy", "allow-monitoring", "tenant-acme", change=widen)
    kube_apiserver.store.remove("NetworkPolicy", "allow-dns", "tenant-acme")
    kube_apiserver.reset_requests()
    downgraded = _ctx(_tenant("acme", "standard"))
    planned = step.plan(downgraded)
    by_action: dict[str, dict[str, str]] = {}
    for change in planned:
        by_action.setdefault(change.action, {})[change.target] = change.detail
    assert set(by_action["delete"]) == {
        "NetworkPolicy tenant-acme/allow-istio-control-plane",
        "PeerAuthentication tenant-acme/default",
        "AuthorizationPolicy tenant-acme/allow-tenant-and-ingress",
    }
    assert set(by_action["create"]) == {"NetworkPolicy tenant-acme/allow-dns"}
    updates = by_action["update"]
    assert ".spec.ingress" in updates["NetworkPolicy tenant-acme/allow-monitoring"]
    assert ".spec.egress" in updates["NetworkPolicy tenant-acme/allow-database"]  # shared DB
    assert (
        ".metadata.labels[tenantctl.io/tier]" in updates["NetworkPolicy tenant-acme/default-deny"]
    )
    assert kube_apiserver.writes() == []
