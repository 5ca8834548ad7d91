"""Objects that carry isolation are compared whole, against the fake kube-apiserver.

Someone widens a NetworkPolicy, a mesh policy, RBAC, a quota, a limit range or the
namespace's Pod Security labels through the official client, as another field manager
(server-side apply, forced) or with a JSON merge patch. Whether the change touches a field
tenantctl applied or adds one it never sent, `differences` reports it, `verify` fails,
converge puts the object back, and a second converge writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from controlplane.drivers import kubernetes as driver
from controlplane.engine.steps import StepContext
from controlplane.errors import KubernetesError
from controlplane.models.platform import BackendModes, ClusterConfig, DriverMode, PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.steps import kubernetes as steps

PLATFORM = PlatformConfig(
    clusters={"shared": ClusterConfig(context="fake")},
    modes=BackendModes(kubernetes=DriverMode.LIVE),
)
NS = "tenant-acme"
MERGE = "application/merge-patch+json"
APPLY = "application/apply-patch+yaml"
INTRUDER = "intruder"
ISTIO = ("security.istio.io", "v1")


@pytest.fixture
def backend(kube_apiserver: Any) -> Iterator[driver.KubernetesClusters]:
    yield driver.KubernetesClusters({"shared": "fake"}, str(kube_apiserver.kubeconfig))


@pytest.fixture
def api(kube_apiserver: Any) -> Iterator[client.ApiClient]:
    with kube_apiserver.api_client() as api_client:
        yield api_client


def _ctx() -> StepContext:
    tenant = Tenant.model_validate(
        {"id": "acme", "name": "Acme", "tier": "enterprise", "region": "us-east-1"}
    )
    return StepContext(tenant, PLATFORM, "op-1")


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    """What isolation depends on: everything but metadata/status, plus the PSA labels."""
    labels = obj["metadata"].get("labels", {})
    security = {k: v for k, v in labels.items() if k.startswith("pod-security.kubernetes.io/")}
    content = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    return {**content, "pod-security": security}


# --- the tampering, each through the official client ------------------------------------


def _allow_all_ingress_on_default_deny(api: client.ApiClient) -> None:
    client.NetworkingV1Api(api).patch_namespaced_network_policy(
        "default-deny", NS, {"spec": {"ingress": [{}]}}, _content_type=MERGE
    )


def _applied_open_egress_on_allow_database(api: client.ApiClient) -> None:
    body = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-database", "namespace": NS},
        "spec": {"egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]},
    }
    client.NetworkingV1Api(api).patch_namespaced_network_policy(
        "allow-database", NS, body, field_manager=INTRUDER, force=True, _content_type=APPLY
    )


def _plaintext_port_on_peer_authentication(api: client.ApiClient) -> None:
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        *ISTIO, NS, "peerauthentications", "default",
        {"spec": {"portLevelMtls": {"8080": {"mode": "DISABLE"}}}},
    )  # fmt: skip


def _allow_anyone_rule_on_authorization_policy(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    live: Any = custom.get_namespaced_custom_object(
        *ISTIO, NS, "authorizationpolicies", "allow-tenant-and-ingress"
    )
    rules = [*live["spec"]["rules"], {}]
    custom.patch_namespaced_custom_object(
        *ISTIO, NS, "authorizationpolicies", "allow-tenant-and-ingress",
        {"spec": {"rules": rules}},
    )  # fmt: skip


def _selector_on_authorization_policy(api: client.ApiClient) -> None:
    # An ALLOW policy with a selector guards only the selected pods: the rest are open.
    body = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "allow-tenant-and-ingress", "namespace": NS},
        "spec": {"selector": {"matchLabels": {"app": "nothing"}}},
    }
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        *ISTIO, NS, "authorizationpolicies", "allow-tenant-and-ingress", body,
        field_manager=INTRUDER, force=True, _content_type=APPLY,
    )  # fmt: skip


def _wildcard_rule_on_role(api: client.ApiClient) -> None:
    body = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "tenant-workload", "namespace": NS},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    }
    client.RbacAuthorizationV1Api(api).patch_namespaced_role(
        "tenant-workload", NS, body, field_manager=INTRUDER, force=True, _content_type=APPLY
    )


def _everyone_bound_by_role_binding(api: client.ApiClient) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    live = rbac.read_namespaced_role_binding("tenant-workload", NS)
    subjects = [s.to_dict() for s in live.subjects or []]
    everyone = {"kind": "Group", "name": "system:authenticated"}
    body = {"subjects": [*subjects, everyone]}
    rbac.patch_namespaced_role_binding("tenant-workload", NS, body, _content_type=MERGE)


def _scope_on_quota(api: client.ApiClient) -> None:
    # A quota scoped to terminating pods no longer counts the tenant's long-running ones.
    body = {"spec": {"scopes": ["Terminating"], "hard": {"requests.nvidia.com/gpu": "8"}}}
    client.CoreV1Api(api).patch_namespaced_resource_quota(
        "tenant-quota", NS, body, field_manager=INTRUDER, _content_type=MERGE
    )


def _premium_class_let_through_the_priority_guard(api: client.ApiClient) -> None:
    guard = {"scopeName": "PriorityClass", "operator": "In", "values": ["tenant-standard"]}
    body = {"spec": {"scopeSelector": {"matchExpressions": [guard]}}}
    client.CoreV1Api(api).patch_namespaced_resource_quota(
        "tenant-priority-guard", NS, body, _content_type=MERGE
    )


def _raised_limit_range(api: client.ApiClient) -> None:
    body = {"spec": {"limits": [{"type": "Container", "max": {"cpu": "512"}}]}}
    client.CoreV1Api(api).patch_namespaced_limit_range(
        "tenant-limits", NS, body, _content_type=MERGE
    )


def _privileged_pod_security(api: client.ApiClient) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NS,
            "labels": {
                "pod-security.kubernetes.io/enforce": "privileged",
                "pod-security.kubernetes.io/enforce-exempt": "true",
            },
        },
    }
    client.CoreV1Api(api).patch_namespace(
        NS, body, field_manager=INTRUDER, force=True, _content_type=APPLY
    )


@dataclass(frozen=True)
class TamperCase:
    reason: str
    kind: str
    name: str
    step: type[steps.ComputeStep] | type[steps.NetworkStep]
    tamper: Callable[[client.ApiClient], None]
    want_path: str


CASES = [
    TamperCase(
        "merge patch adds an allow-all ingress rule to the default deny",
        "NetworkPolicy", "default-deny", steps.NetworkStep,
        _allow_all_ingress_on_default_deny, ".spec.ingress",
    ),
    TamperCase(
        "another applier opens the database egress to the world (forced)",
        "NetworkPolicy", "allow-database", steps.NetworkStep,
        _applied_open_egress_on_allow_database, ".spec.egress",
    ),
    TamperCase(
        "merge patch disables mTLS on one port of the PeerAuthentication",
        "PeerAuthentication", "default", steps.NetworkStep,
        _plaintext_port_on_peer_authentication, ".spec.portLevelMtls",
    ),
    TamperCase(
        "merge patch appends an allow-anyone rule to the AuthorizationPolicy",
        "AuthorizationPolicy", "allow-tenant-and-ingress", steps.NetworkStep,
        _allow_anyone_rule_on_authorization_policy, ".spec.rules",
    ),
    TamperCase(
        "another applier narrows the AuthorizationPolicy to no pods with a selector",
        "AuthorizationPolicy", "allow-tenant-and-ingress", steps.NetworkStep,
        _selector_on_authorization_policy, ".spec.selector",
    ),
    TamperCase(
        "another applier gives the Role a wildcard rule (forced)",
        "Role", "tenant-workload", steps.ComputeStep,
        _wildcard_rule_on_role, ".rules",
    ),
    TamperCase(
        "merge patch binds every authenticated user to the Role",
        "RoleBinding", "tenant-workload", steps.ComputeStep,
        _everyone_bound_by_role_binding, ".subjects",
    ),
    TamperCase(
        "another field manager scopes the quota to terminating pods",
        "ResourceQuota", "tenant-quota", steps.ComputeStep,
        _scope_on_quota, ".spec.scopes",
    ),
    TamperCase(
        "merge patch lets pods of higher priority classes past the priority guard",
        "ResourceQuota", "tenant-priority-guard", steps.ComputeStep,
        _premium_class_let_through_the_priority_guard, ".spec.scopeSelector.matchExpressions",
    ),
    TamperCase(
        "merge patch raises the LimitRange maximum",
        "LimitRange", "tenant-limits", steps.ComputeStep,
        _raised_limit_range, ".spec.limits",
    ),
    TamperCase(
        "another applier sets Pod Security to privileged and adds a label (forced)",
        "Namespace", NS, steps.ComputeStep,
        _privileged_pod_security, ".metadata.labels[pod-security.kubernetes.io/enforce]",
    ),
]  # fmt: skip


def _onboard(backend: driver.KubernetesClusters) -> None:
    for step in steps.tenant_steps(backend):
        step.apply(_ctx())


def _live(kube_apiserver: Any, case: TamperCase) -> dict[str, Any]:
    namespace = "" if case.kind == "Namespace" else NS
    found: dict[str, Any] = kube_apiserver.store.get(case.kind, case.name, namespace)
    return found


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.reason)
def test_a_widened_isolation_object_is_drift_and_converge_restores_it(
    case: TamperCase,
    backend: driver.KubernetesClusters,
    api: client.ApiClient,
    kube_apiserver: Any,
) -> None:
    _onboard(backend)
    before = _content(_live(kube_apiserver, case))
    case.tamper(api)
    assert _content(_live(kube_apiserver, case)) != before  # the tampering took effect
    step = case.step(backend)

    found = step.differences(_ctx())
    assert case.want_path in [d.path for d in found], found
    assert step.verify(_ctx())

    kube_apiserver.reset_requests()
    step.apply(_ctx())
    assert kube_apiserver.writes()
    assert _content(_live(kube_apiserver, case)) == before
    assert step.differences(_ctx()) == []

    kube_apiserver.reset_requests()
    step.apply(_ctx())
    assert kube_apiserver.writes() == []


def test_a_field_added_by_another_manager_is_reported_with_that_manager(
    backend: driver.KubernetesClusters, api: client.ApiClient
) -> None:
    _onboard(backend)
    _scope_on_quota(api)
    found = {d.path: d for d in steps.ComputeStep(backend).differences(_ctx())}
    added = found[".spec.scopes"]
    assert (added.want, added.have, added.owner, added.added) == (
        "<absent>",
        "['Terminating']",
        INTRUDER,
        True,
    )
    assert found[".spec.hard[requests.nvidia.com/gpu]"].added


def test_removing_added_fields_leaves_tenantctl_the_only_applier(
    backend: driver.KubernetesClusters, api: client.ApiClient, kube_apiserver: Any
) -> None:
    _onboard(backend)
    _allow_all_ingress_on_default_deny(api)
    kube_apiserver.reset_requests()
    steps.NetworkStep(backend).apply(_ctx())
    writes = [(r.method, r.content_type) for r in kube_apiserver.writes()]
    assert writes == [("PATCH", MERGE)]  # nothing of ours changed: only the removal
    live = kube_apiserver.store.get("NetworkPolicy", "default-deny", NS)
    assert "ingress" not in live["spec"]
    managers = {e["manager"]: e["operation"] for e in live["metadata"]["managedFields"]}
    assert managers.get("tenantctl") == "Apply"


def test_a_removal_racing_another_write_is_a_retryable_conflict(
    backend: driver.KubernetesClusters, api: client.ApiClient, kube_apiserver: Any
) -> None:
    _onboard(backend)
    _allow_all_ingress_on_default_deny(api)
    scope = steps.scope_for(_ctx(), "network")
    desired = steps.NetworkStep(backend).desired(_ctx())
    with backend.snapshot(steps.INVENTORY):
        backend.differences(scope, desired)  # lists now, at this resourceVersion
        kube_apiserver.store.edit(
            "NetworkPolicy", "default-deny", NS, change=lambda o: o["metadata"].update(
                annotations={"note": "touched"}
            )
        )  # fmt: skip
        with pytest.raises(KubernetesError, match="modified") as caught:
            backend.converge(scope, desired)
    assert caught.value.retryable
    backend.converge(scope, desired)  # a fresh read succeeds
    assert "ingress" not in kube_apiserver.store.get("NetworkPolicy", "default-deny", NS)["spec"]
