"""Rendered Kubernetes objects: schema-valid, isolating, complete and byte-stable."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from controlplane.config import loading
from controlplane.errors import ConfigError
from controlplane.models.platform import ClusterConfig, KubernetesSettings, PlatformConfig, Tier
from controlplane.models.tenants import Tenant
from controlplane.resources import rendering
from controlplane.resources.kubernetes import bundles, objects, placement, quotas

EXAMPLES = Path(__file__).resolve().parents[2] / "tenant-configs"
SCHEMAS = Path(bundles.__file__).parent / "schemas"
K8S_VERSION = "1.31.0"
CLUSTER_SCOPED = {"Namespace", "PriorityClass"}


@cache
def _examples() -> tuple[PlatformConfig, tuple[Tenant, ...]]:
    platform = loading.load_platform(EXAMPLES / "platform.yaml")
    sources = loading.load_tenants([EXAMPLES], platform)
    return platform, tuple(s.tenant for s in sources)


def _tenant(tier: str = "standard", **fields: Any) -> Tenant:
    return Tenant.model_validate(
        {"id": "acme", "name": "Acme", "tier": Tier(tier), "region": "us-east-1", **fields}
    )


def _all(tenant: Tenant, platform: PlatformConfig, **kw: Any) -> list[dict[str, Any]]:
    return [m for c in bundles.COMPONENTS for m in bundles.desired(tenant, platform, c, **kw)]


def _of(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def _every_example_manifest() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object `tenantctl render` writes for the examples, plus the live Secret."""
    platform, tenants = _examples()
    for tenant in tenants:
        for path, text in rendering.tenant_files(tenant, platform).items():
            if path.endswith(bundles.KUSTOMIZATION) or not path.startswith("kubernetes/"):
                continue  # dns.yaml is an external-dns DNSEndpoint, checked in its own tests
            for doc in yaml.safe_load_all(text):
                yield f"{tenant.id}/{path}", doc
        live = bundles.config(tenant, platform, {"password": "x", "host": "db"})
        yield f"{tenant.id}/live-secret", live[1]
    for path, text in rendering.platform_files(platform).items():
        if not path.endswith(bundles.KUSTOMIZATION):
            for doc in yaml.safe_load_all(text):
                yield f"_platform/{path}", doc


@cache
def _crd_validator(kind: str) -> jsonschema.Draft202012Validator:
    (path,) = SCHEMAS.glob(f"{kind.lower()}-*.json")
    return jsonschema.Draft202012Validator(json.loads(path.read_text()))


def _validate(manifest: dict[str, Any]) -> None:
    if manifest["kind"] in ("PeerAuthentication", "AuthorizationPolicy", "ExternalSecret"):
        _crd_validator(manifest["kind"]).validate(manifest)
    else:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


# --- schema validity ---------------------------------------------------------------


def test_every_rendered_manifest_of_every_example_passes_strict_validation() -> None:
    seen = []
    for where, manifest in _every_example_manifest():
        try:
            _validate(manifest)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
            pytest.fail(f"{where}: {manifest['kind']}/{manifest['metadata']['name']}: {exc}")
        seen.append(manifest["kind"])
    assert set(seen) >= {
        "Namespace", "ResourceQuota", "LimitRange", "ServiceAccount", "Role", "RoleBinding",
        "ConfigMap", "Secret", "ExternalSecret", "NetworkPolicy", "PeerAuthentication",
        "AuthorizationPolicy", "PriorityClass",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("reason", "manifest", "path"),
    [
        (
            "unknown field in the Istio spec",
            {"kind": "PeerAuthentication", "spec": {"mtls": {"mode": "STRICT"}, "bogus": 1}},
            "spec",
        ),
        (
            "mTLS mode outside the enum",
            {"kind": "PeerAuthentication", "spec": {"mtls": {"mode": "SOMETIMES"}}},
            "spec.mtls.mode",
        ),
        (
            "ExternalSecret without a store",
            {"kind": "ExternalSecret", "spec": {"secretStoreRef": {"name": 3}}},
            "spec.secretStoreRef.name",
        ),
        (
            "quota value that is not a quantity",
            {"kind": "ResourceQuota", "spec": {"hard": {"pods": []}}},
            "spec.hard.pods",
        ),
    ],
)
def test_validation_rejects_broken_manifests(
    reason: str, manifest: dict[str, Any], path: str
) -> None:
    group = {
        "PeerAuthentication": "security.istio.io/v1",
        "ExternalSecret": "external-secrets.io/v1",
        "ResourceQuota": "v1",
    }[manifest["kind"]]
    full = {"apiVersion": group, "metadata": {"name": "x", "namespace": "y"}, **manifest}
    with pytest.raises(jsonschema.ValidationError) as caught:
        _validate(full)
    assert ".".join(str(p) for p in caught.value.absolute_path).startswith(path), reason


# --- inventory labels ----------------------------------------------------------------


def test_every_tenant_object_carries_the_inventory_labels() -> None:
    platform, tenants = _examples()
    for tenant in tenants:
        for component in bundles.COMPONENTS:
            for m in bundles.desired(tenant, platform, component):
                labels = m["metadata"]["labels"]
                assert labels[objects.TENANT_LABEL] == tenant.id
                assert labels[objects.MANAGED_BY_LABEL] == "tenantctl"
                assert labels[objects.COMPONENT_LABEL] == component
                if m["kind"] not in CLUSTER_SCOPED:
                    assert m["metadata"]["namespace"] == f"tenant-{tenant.id}"


# --- isolation properties ------------------------------------------------------------


@pytest.mark.parametrize("tier", list(Tier))
def test_namespace_enforces_pod_security_restricted_in_every_mode(tier: Tier) -> None:
    (ns,) = _of(bundles.compute(_tenant(tier), PlatformConfig()), "Namespace")
    labels = ns["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    assert not any(v == "privileged" for v in labels.values())


@pytest.mark.parametrize("tier", list(Tier))
def test_default_deny_covers_ingress_and_egress_of_every_pod(tier: Tier) -> None:
    policies = _of(bundles.network(_tenant(tier), PlatformConfig()), "NetworkPolicy")
    (deny,) = [p for p in policies if p["metadata"]["name"] == "default-deny"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert policies[0] is deny


def _peers(policies: list[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    key = "from" if direction == "ingress" else "to"
    return [
        {"peer": peer, "ports": rule.get("ports", [])}
        for p in policies
        for rule in p["spec"].get(direction, [])
        for peer in rule[key]
    ]


def _ns(name: str) -> dict[str, Any]:
    return {"matchLabels": {"kubernetes.io/metadata.name": name}}


@dataclass(frozen=True)
class FlowCase:
    reason: str
    tier: str
    direction: str
    want: list[dict[str, Any]]


_SAME = {"peer": {"podSelector": {}}, "ports": []}
_DNS = {
    "peer": {
        "namespaceSelector": _ns("kube-system"),
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    },
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}
_INGRESS = [
    _SAME,
    {"peer": {"namespaceSelector": _ns("istio-ingress")}, "ports": []},
    {"peer": {"namespaceSelector": _ns("monitoring")}, "ports": []},
]


def _db(cidr: str) -> dict[str, Any]:
    return {"peer": {"ipBlock": {"cidr": cidr}}, "ports": [{"protocol": "TCP", "port": 5432}]}


_ISTIOD = {
    "peer": {"namespaceSelector": _ns("istio-system"), "podSelector": {
        "matchLabels": {"app": "istiod"}}},
    "ports": [{"protocol": "TCP", "port": 15012}],
}  # fmt: skip


@pytest.mark.parametrize(
    "case",
    [
        FlowCase(
            "standard ingress: namespace, gateway, monitoring", "standard", "ingress", _INGRESS
        ),
        FlowCase("enterprise ingress is the same", "enterprise", "ingress", _INGRESS),
        FlowCase(
            "standard egress: namespace, DNS, shared database",
            "standard",
            "egress",
            [_SAME, _DNS, _db("10.20.0.0/24")],
        ),
        FlowCase(
            "enterprise egress adds istiod and uses the dedicated DB network",
            "enterprise",
            "egress",
            [_SAME, _DNS, _db("10.30.0.0/16"), _ISTIOD],
        ),
        FlowCase(
            "premium egress equals enterprise",
            "premium",
            "egress",
            [_SAME, _DNS, _db("10.30.0.0/16"), _ISTIOD],
        ),
    ],
    ids=lambda c: c.reason,
)
def test_network_policies_allow_exactly_the_expected_flows(case: FlowCase) -> None:
    policies = _of(bundles.network(_tenant(case.tier), PlatformConfig()), "NetworkPolicy")
    assert _peers(policies, case.direction) == case.want


_FORBIDDEN_RESOURCES = {
    "roles", "rolebindings", "clusterroles", "clusterrolebindings", "resourcequotas",
    "limitranges", "networkpolicies", "namespaces", "*",
}  # fmt: skip
_FORBIDDEN_VERBS = {"escalate", "bind", "impersonate", "*", "create", "update", "patch", "delete"}


@pytest.mark.parametrize("tier", list(Tier))
def test_rbac_is_namespaced_read_only_and_cannot_escalate(tier: Tier) -> None:
    manifests = _all(_tenant(tier), PlatformConfig())
    kinds = {m["kind"] for m in manifests}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
    (role,) = _of(manifests, "Role")
    for rule in role["rules"]:
        assert not set(rule["verbs"]) & _FORBIDDEN_VERBS
        assert not set(rule["resources"]) & _FORBIDDEN_RESOURCES
        assert rule["apiGroups"] == [""]
        if "secrets" in rule["resources"]:
            assert rule["resourceNames"] == ["tenant-database"]
    (binding,) = _of(manifests, "RoleBinding")
    assert binding["roleRef"]["kind"] == "Role"
    assert [s["namespace"] for s in binding["subjects"]] == ["tenant-acme"]


# Ephemeral storage and claimed storage scale with the tier like cpu and memory.
_STORAGE = {
    tier: {
        "requests.ephemeral-storage": f"{10 * scale}Gi",
        "limits.ephemeral-storage": f"{20 * scale}Gi",
        "requests.storage": f"{100 * scale}Gi",
    }
    for tier, scale in (("standard", 1), ("enterprise", 4), ("premium", 16))
}


@dataclass(frozen=True)
class QuotaCase:
    reason: str
    tier: str
    limits: dict[str, Any]
    want: dict[str, str]


@pytest.mark.parametrize(
    "case",
    [
        QuotaCase(
            "standard tier defaults",
            "standard",
            {},
            {"requests.cpu": "4", "requests.memory": "8Gi", "limits.cpu": "8",
             "limits.memory": "16Gi", "pods": "50", "services": "10",
             "persistentvolumeclaims": "5"},
        ),
        QuotaCase(
            "overrides below the tier's requests narrow requests too",
            "standard",
            {"cpu": "2", "memory": "4Gi", "pods": 20},
            {"requests.cpu": "2", "requests.memory": "4Gi", "limits.cpu": "2",
             "limits.memory": "4Gi", "pods": "20", "services": "10",
             "persistentvolumeclaims": "5"},
        ),
        QuotaCase(
            "enterprise override between requests and limits keeps requests",
            "enterprise",
            {"cpu": "24"},
            {"requests.cpu": "16", "requests.memory": "32Gi", "limits.cpu": "24",
             "limits.memory": "64Gi", "pods": "200", "services": "40",
             "persistentvolumeclaims": "20"},
        ),
        QuotaCase(
            "quantities are emitted canonically, as the API server stores them",
            "standard",
            {"cpu": "0.5", "memory": "8192Mi"},
            {"requests.cpu": "500m", "requests.memory": "8Gi", "limits.cpu": "500m",
             "limits.memory": "8Gi", "pods": "50", "services": "10",
             "persistentvolumeclaims": "5"},
        ),
        QuotaCase(
            "decimal fractions, milli units and binary multiples",
            "standard",
            {"cpu": "1.5", "memory": "1024Mi"},
            {"requests.cpu": "1500m", "requests.memory": "1Gi", "limits.cpu": "1500m",
             "limits.memory": "1Gi", "pods": "50", "services": "10",
             "persistentvolumeclaims": "5"},
        ),
        QuotaCase(
            "1000m is one cpu",
            "standard",
            {"cpu": "1000m"},
            {"requests.cpu": "1", "requests.memory": "8Gi", "limits.cpu": "1",
             "limits.memory": "16Gi", "pods": "50", "services": "10",
             "persistentvolumeclaims": "5"},
        ),
    ],
    ids=lambda c: c.reason,
)  # fmt: skip
def test_quota_is_complete_and_follows_tier_and_overrides(case: QuotaCase) -> None:
    tenant = _tenant(case.tier, limits=case.limits)
    want = {
        **case.want,
        **_STORAGE[case.tier],
        "services.nodeports": "0",
        "services.loadbalancers": "0",
    }
    assert quotas.hard_limits(tenant, PlatformConfig()) == want
    manifests = bundles.compute(tenant, PlatformConfig())
    quota = next(m for m in manifests if m["metadata"]["name"] == quotas.QUOTA)
    assert quota["spec"]["hard"] == want
    (limit_range,) = _of(manifests, "LimitRange")
    assert limit_range["spec"]["limits"][0]["max"] == {
        "cpu": want["limits.cpu"],
        "memory": want["limits.memory"],
    }


@pytest.mark.parametrize("tier", list(Tier))
def test_priority_guard_forbids_every_other_priority_class(tier: Tier) -> None:
    platform = PlatformConfig()
    guard = next(
        m for m in bundles.compute(_tenant(tier), platform)
        if m["metadata"]["name"] == quotas.PRIORITY_GUARD
    )  # fmt: skip
    (expr,) = guard["spec"]["scopeSelector"]["matchExpressions"]
    own = platform.tiers[tier].priority_class
    every = {p.priority_class for p in platform.tiers.values()} | {
        "system-cluster-critical",
        "system-node-critical",
    }
    assert guard["spec"]["hard"] == {"pods": "0"}
    assert (expr["operator"], set(expr["values"])) == ("In", every - {own})


# --- placement and Istio -------------------------------------------------------------


@dataclass(frozen=True)
class PlacementCase:
    reason: str
    tier: str
    want_annotations: dict[str, str]
    want_istio: bool


_TOLERATION = (
    '[{"effect":"NoSchedule","key":"tenantctl.io/dedicated","operator":"Equal","value":"acme"}]'
)


@pytest.mark.parametrize(
    "case",
    [
        PlacementCase("standard shares nodes, no mesh policies", "standard", {}, False),
        PlacementCase(
            "enterprise is pinned to its node pool and in the mesh",
            "enterprise",
            {
                placement.NODE_SELECTOR_ANNOTATION: "tenantctl.io/node-pool=acme",
                placement.TOLERATIONS_DEFAULT_ANNOTATION: _TOLERATION,
                placement.TOLERATIONS_ALLOWED_ANNOTATION: _TOLERATION,
            },
            True,
        ),
        PlacementCase("premium has a whole cluster, in the mesh", "premium", {}, True),
    ],
    ids=lambda c: c.reason,
)
def test_placement_and_istio_follow_the_tier(case: PlacementCase) -> None:
    manifests = _all(_tenant(case.tier), PlatformConfig())
    (ns,) = _of(manifests, "Namespace")
    assert ns["metadata"].get("annotations", {}) == case.want_annotations
    (peer,) = _of(manifests, "PeerAuthentication") or [None]
    (authz,) = _of(manifests, "AuthorizationPolicy") or [None]
    assert (peer is not None, authz is not None) == (case.want_istio, case.want_istio)
    if case.want_istio:
        assert peer["spec"] == {"mtls": {"mode": "STRICT"}}
        assert authz["spec"] == {
            "action": "ALLOW",
            "rules": [{"from": [{"source": {"namespaces": ["tenant-acme", "istio-ingress"]}}]}],
        }


@dataclass(frozen=True)
class ClusterCase:
    reason: str
    tier: str
    clusters: dict[str, str]
    mapping: dict[str, str]
    want: str | None


@pytest.mark.parametrize(
    "case",
    [
        ClusterCase("standard goes to the shared cluster", "standard", {}, {}, "shared"),
        ClusterCase("enterprise stays on the shared cluster", "enterprise", {}, {}, "shared"),
        ClusterCase(
            "premium finds premium-<id> by convention",
            "premium",
            {"premium-acme": "ctx-acme"},
            {},
            "premium-acme",
        ),
        ClusterCase(
            "premium mapped explicitly",
            "premium",
            {"big-one": "ctx"},
            {"acme": "big-one"},
            "big-one",
        ),
        ClusterCase("premium without a cluster is a config error", "premium", {}, {}, None),
    ],
    ids=lambda c: c.reason,
)
def test_cluster_for_maps_premium_tenants_to_their_dedicated_cluster(case: ClusterCase) -> None:
    platform = PlatformConfig(
        clusters={"shared": ClusterConfig()}
        | {name: ClusterConfig(context=ctx) for name, ctx in case.clusters.items()},
        kubernetes=KubernetesSettings(dedicated_clusters=case.mapping),
    )
    if case.want is None:
        with pytest.raises(ConfigError, match="dedicated cluster"):
            placement.cluster_for(_tenant(case.tier), platform)
    else:
        assert placement.cluster_for(_tenant(case.tier), platform) == case.want


# --- config and secrets --------------------------------------------------------------


def test_config_map_carries_features_branding_integrations_and_ai() -> None:
    platform, tenants = _examples()
    acme = next(t for t in tenants if t.id == "tenant-100")
    (cm,) = _of(bundles.config(acme, platform), "ConfigMap")
    data = cm["data"]
    assert json.loads(data["features.json"]) == {"ai_agents": True, "dynamic_pricing": False}
    assert json.loads(data["branding.json"])["primary_color"] == "#1a73e8"
    assert json.loads(data["integrations.json"])["erp"] == "sap_s4hana"
    assert json.loads(data["ai.json"])["llm_provider"] == "claude"
    assert data["tenant.host"] == "acme.tenants.example.com"


@pytest.mark.parametrize(
    ("reason", "credentials", "want_kind"),
    [
        ("render mode references the secret manager", None, "ExternalSecret"),
        ("live mode applies a Secret", {"password": "s3cr3t-pw"}, "Secret"),
    ],
)
def test_database_credentials_by_mode(
    reason: str, credentials: dict[str, str] | None, want_kind: str
) -> None:
    secret = bundles.config(_tenant(), PlatformConfig(), credentials)[1]
    assert secret["kind"] == want_kind, reason
    if credentials is None:
        assert secret["spec"]["dataFrom"] == [
            {"extract": {"key": "tenantctl/tenants/acme/database"}}
        ]
    else:
        assert base64.b64decode(secret["data"]["password"]).decode() == "s3cr3t-pw"
        assert "s3cr3t-pw" not in json.dumps(secret)


def test_rendered_files_hold_no_secret_objects_or_values() -> None:
    platform, tenants = _examples()
    for tenant in tenants:
        for text in rendering.tenant_files(tenant, platform).values():
            kinds = {doc["kind"] for doc in yaml.safe_load_all(text)}
            assert "Secret" not in kinds
            assert "password" not in text.lower()


# --- render files --------------------------------------------------------------------


def test_render_files_are_byte_identical_across_runs_and_listed_in_kustomization() -> None:
    platform, tenants = _examples()
    for tenant in tenants:
        first = rendering.tenant_files(tenant, platform)
        again = rendering.tenant_files(tenant.model_copy(), platform.model_copy(deep=True))
        assert first == again
        kustomization = yaml.safe_load(first["kubernetes/kustomization.yaml"])
        listed = {f"kubernetes/{r}" for r in kustomization["resources"]}
        manifests = {p for p in first if p.startswith("kubernetes/")}
        assert listed == manifests - {"kubernetes/kustomization.yaml"}
        assert "dns.yaml" in first
        assert all("&id" not in text and "*id" not in text for text in first.values())


def test_platform_files_hold_every_tier_priority_class() -> None:
    platform = PlatformConfig()
    docs = list(yaml.safe_load_all(rendering.platform_files(platform)["kubernetes/platform.yaml"]))
    assert {(d["metadata"]["name"], d["value"]) for d in docs} == {
        (p.priority_class, p.priority) for p in platform.tiers.values()
    }
    assert all(objects.TENANT_LABEL not in d["metadata"]["labels"] for d in docs)
