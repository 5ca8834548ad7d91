"""Istio policies for enterprise and premium tenants.

PeerAuthentication STRICT refuses plaintext traffic to the tenant's pods; the
AuthorizationPolicy then admits only workloads of the tenant's own namespace and the
ingress gateway. An ALLOW policy denies whatever it does not match.
"""

from __future__ import annotations

from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.resources.kubernetes import objects
from controlplane.resources.kubernetes.objects import Manifest

__all__ = ["API_VERSION", "AUTHORIZATION_POLICY", "authorization_policy", "peer_authentication"]

API_VERSION = "security.istio.io/v1"
AUTHORIZATION_POLICY = "allow-tenant-and-ingress"


def peer_authentication(tenant: Tenant, platform: PlatformConfig, *, component: str) -> Manifest:
    """Namespace-wide mTLS STRICT."""
    return {
        "apiVersion": API_VERSION,
        "kind": "PeerAuthentication",
        "metadata": objects.tenant_metadata(
            "default", tenant=tenant, platform=platform, component=component
        ),
        "spec": {"mtls": {"mode": "STRICT"}},
    }


def authorization_policy(tenant: Tenant, platform: PlatformConfig, *, component: str) -> Manifest:
    """Allow only the tenant's namespace and the ingress gateway's namespace."""
    namespace = objects.namespace_name(tenant, platform)
    return {
        "apiVersion": API_VERSION,
        "kind": "AuthorizationPolicy",
        "metadata": objects.metadata(
            AUTHORIZATION_POLICY, tenant=tenant, component=component, namespace=namespace
        ),
        "spec": {
            "action": "ALLOW",
            "rules": [
                {"from": [{"source": {"namespaces": [namespace, platform.ingress_namespace]}}]}
            ],
        },
    }
