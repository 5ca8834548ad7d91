"""Kubernetes manifests of a tenant: pure functions from tenant + platform to objects.

One module per concern (namespace, quotas, network policies, RBAC, config, Istio,
placement); `bundles` groups them into the per-step sets (`compute`, `config`,
`network`) that the steps apply and `tenantctl render` writes.
"""

__all__: list[str] = []
