"""NetworkPolicies: deny everything, then allow exactly what a tenant needs.

Policies are additive, so the default deny (ingress and egress, every pod) comes
first and each allow is its own small, named policy: traffic inside the namespace,
from the ingress gateway and from monitoring, to cluster DNS, to the tenant's own
database, and (when Istio guards the tenant) to the mesh control plane. Namespaces are
matched by `kubernetes.io/metadata.name`, which the API server sets and nobody can fake.
"""

from __future__ import annotations

from controlplane.models.platform import PlatformConfig, Tier
from controlplane.models.tenants import Tenant
from controlplane.resources.kubernetes import objects, placement
from controlplane.resources.kubernetes.objects import Json, Manifest

__all__ = [
    "DEFAULT_DENY",
    "NAMESPACE_NAME_LABEL",
    "database_cidr",
    "network_policies",
]

DEFAULT_DENY = "default-deny"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
_ISTIOD_PORT = 15012


def _in_namespace(name: str, pod_labels: dict[str, str] | None = None) -> Json:
    peer: dict[str, Json] = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: name}}}
    if pod_labels:
        peer["podSelector"] = {"matchLabels": dict(pod_labels)}
    return peer


def _ports(protocols: tuple[str, ...], port: int) -> list[Json]:
    return [{"protocol": protocol, "port": port} for protocol in protocols]


def database_cidr(tenant: Tenant, platform: PlatformConfig) -> str:
    """Network of the tenant's database: the shared server, or the dedicated subnets."""
    settings = platform.kubernetes
    if tenant.tier is Tier.STANDARD:
        return settings.shared_database_cidr
    return settings.dedicated_database_cidr


def _rules(tenant: Tenant, platform: PlatformConfig) -> dict[str, dict[str, Json]]:
    """Policy name -> spec of every allow the tenant gets."""
    settings = platform.kubernetes
    same: Json = {"podSelector": {}}
    rules: dict[str, dict[str, Json]] = {
        "allow-same-namespace": {"ingress": [{"from": [same]}], "egress": [{"to": [same]}]},
        "allow-ingress-gateway": {
            "ingress": [{"from": [_in_namespace(platform.ingress_namespace)]}]
        },
        "allow-monitoring": {"ingress": [{"from": [_in_namespace(platform.monitoring_namespace)]}]},
        "allow-dns": {
            "egress": [
                {
                    "to": [_in_namespace(settings.dns_namespace, settings.dns_pod_labels)],
                    "ports": _ports(("UDP", "TCP"), 53),
                }
            ]
        },
        "allow-database": {
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": database_cidr(tenant, platform)}}],
                    "ports": _ports(("TCP",), settings.database_port),
                }
            ]
        },
    }
    if placement.uses_istio(tenant):
        rules["allow-istio-control-plane"] = {
            "egress": [
                {
                    "to": [_in_namespace(settings.istio_namespace, {"app": "istiod"})],
                    "ports": _ports(("TCP",), _ISTIOD_PORT),
                }
            ]
        }
    return rules


def _policy(
    name: str, spec: dict[str, Json], *, tenant: Tenant, namespace: str, component: str
) -> Manifest:
    types: list[Json] = [t for t in ("Ingress", "Egress") if t.lower() in spec]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": objects.metadata(name, tenant=tenant, component=component, namespace=namespace),
        "spec": {"podSelector": {}, "policyTypes": types, **spec},
    }


def network_policies(tenant: Tenant, platform: PlatformConfig, *, component: str) -> list[Manifest]:
    """The default deny followed by each explicit allow."""
    namespace = objects.namespace_name(tenant, platform)
    deny: Manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": objects.metadata(
            DEFAULT_DENY, tenant=tenant, component=component, namespace=namespace
        ),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    allows = [
        _policy(name, spec, tenant=tenant, namespace=namespace, component=component)
        for name, spec in _rules(tenant, platform).items()
    ]
    return [deny, *allows]
