"""What a suspended tenant looks like: traffic off, data untouched. Pure.

- Ingress: NetworkPolicies are additive (a policy can only allow), so an extra "deny"
  policy could not take back what `allow-ingress-gateway` allows. Suspension therefore
  converges the tenant's network component *without* that allow (the default deny then
  refuses the gateway), and, for tiers in the mesh, adds an Istio DENY
  AuthorizationPolicy for the gateway's namespace (DENY wins over every ALLOW).
- DNS: the tenant's CNAME points at the platform's suspended target
  (`suspended.<base_domain>`, a page saying the service is suspended) instead of the
  ingress; custom hostnames keep pointing at the tenant's subdomain, so they follow.
"""

from __future__ import annotations

from controlplane.models.dns import TenantDns
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.resources import dns as dns_resources
from controlplane.resources.kubernetes import bundles, istio, objects, placement
from controlplane.resources.kubernetes.objects import Manifest

__all__ = ["INGRESS_ALLOW", "SUSPENDED_POLICY", "dns", "network", "suspended_target"]

INGRESS_ALLOW = "allow-ingress-gateway"
SUSPENDED_POLICY = "tenantctl-suspended"


def suspended_target(platform: PlatformConfig) -> str:
    """Where a suspended tenant's hostname points."""
    return f"suspended.{platform.base_domain}".lower()


def network(tenant: Tenant, platform: PlatformConfig) -> list[Manifest]:
    """The network component of a suspended tenant."""
    found = [
        m
        for m in bundles.network(tenant, platform)
        if not (m["kind"] == "NetworkPolicy" and _name(m) == INGRESS_ALLOW)
    ]
    if placement.uses_istio(tenant):
        found.append(_deny_gateway(tenant, platform))
    return found


def dns(tenant: Tenant, platform: PlatformConfig) -> TenantDns:
    """The tenant's DNS with its record on the suspended target."""
    suspended = platform.model_copy(update={"ingress_target": suspended_target(platform)})
    return dns_resources.desired(tenant, suspended)


def _name(manifest: Manifest) -> str:
    meta = manifest.get("metadata")
    return str(meta.get("name")) if isinstance(meta, dict) else ""


def _deny_gateway(tenant: Tenant, platform: PlatformConfig) -> Manifest:
    namespace = objects.namespace_name(tenant, platform)
    return {
        "apiVersion": istio.API_VERSION,
        "kind": "AuthorizationPolicy",
        "metadata": objects.metadata(
            SUSPENDED_POLICY, tenant=tenant, component=bundles.NETWORK, namespace=namespace
        ),
        "spec": {
            "action": "DENY",
            "rules": [{"from": [{"source": {"namespaces": [platform.ingress_namespace]}}]}],
        },
    }
