"""Build the drivers the steps use from the platform's settings (live or render mode).

Kept apart from the service so that one module knows how each backend is assembled
(servers, Terraform targets and backends, kube contexts) and the service only runs flows.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import cast

from controlplane.drivers import exports, postgres, tenant_resources, terraform
from controlplane.drivers import kubernetes as kubernetes_driver
from controlplane.errors import ConfigError, SourceLocation
from controlplane.models.platform import PlatformConfig
from controlplane.models.terraform import TerraformEvent
from controlplane.resources.kubernetes import bundles as kubernetes_bundles
from controlplane.resources.kubernetes import objects as kubernetes_objects
from controlplane.resources.kubernetes import rbac as kubernetes_rbac
from controlplane.resources.kubernetes import tenant_crd
from controlplane.state import database
from controlplane.steps import kubernetes as kubernetes_steps

__all__ = [
    "MODULES_ENV",
    "database_drivers",
    "export_store",
    "kubernetes_backend",
    "rbac_rules",
    "tenant_objects",
]

MODULES_ENV = "TENANTCTL_TERRAFORM_MODULES"


def database_drivers(
    platform: PlatformConfig,
    *,
    lock_timeout: float = 30.0,
    holder: str = "",
    on_event: Callable[[TerraformEvent], None] = lambda _event: None,
) -> tuple[terraform.Terraform, postgres.TenantDatabases]:
    """Terraform workspaces and isolation checks for tenant databases (docs/database.md).

    The shared and dedicated Postgres servers default to the state store's server
    (the embedded pgserver), with the shared schemas in its `tenantctl_shared` database.
    `lock_timeout` bounds every lock wait of terraform (the plugin-cache lock names
    `holder`); `on_event` receives terraform's progress while it runs.
    """
    server = database.database_url().replace("postgresql+psycopg://", "postgresql://", 1)
    shared = os.environ.get(platform.shared_database_url_env) or postgres.ensure_database(
        server, "tenantctl_shared"
    )
    dedicated = os.environ.get(platform.databases.dedicated_server_url_env) or server
    passwords = postgres.DerivedPasswords(postgres.load_master_key(database.data_dir()))

    def secrets(tenant_id: str, module: str) -> dict[str, str]:
        if module.startswith("dedicated-db-aws"):
            return {}  # RDS keeps its master password in Secrets Manager
        verifier = postgres.scram_verifier(passwords.password(tenant_id))
        return {"app_password_verifier": verifier}

    targets = {
        "shared": terraform.Target(env=postgres.libpq_env(shared)),
        "dedicated": terraform.Target(env=postgres.libpq_env(dedicated)),
        "aws": terraform.aws_target(platform.databases.aws_endpoint_url),
    }
    state = platform.terraform_state
    backend = (
        terraform.S3Backend(state.bucket, state.region, state.key_prefix, state.endpoint_url)
        if platform.terraform_backend == "s3"
        else None
    )
    modules = (
        os.environ.get(MODULES_ENV) or Path(__file__).resolve().parents[1] / "terraform" / "modules"
    )
    provisioner = terraform.Terraform(
        database.data_dir() / "terraform",
        Path(modules),
        targets,
        secrets=secrets,
        backend=backend,
        lock_timeout=f"{lock_timeout:g}s",
        init_lock_timeout=lock_timeout,
        holder=holder,
        on_event=on_event,
    )
    servers = {"shared": shared, "dedicated": dedicated}
    return provisioner, postgres.TenantDatabases(servers, passwords)


def kubernetes_backend(
    platform: PlatformConfig, out_dir: Path
) -> kubernetes_steps.KubernetesBackend:
    """Server-side apply on the platform's clusters (live), or files under `out_dir`."""
    if platform.modes.kubernetes != "live":
        return kubernetes_driver.RenderedClusters(
            out_dir, kubernetes_objects.to_yaml, kubernetes_bundles.kustomization
        )
    contexts = {name: cluster.context for name, cluster in platform.clusters.items()}
    return kubernetes_driver.KubernetesClusters(contexts, platform.kubernetes.kubeconfig)


def export_store(platform: PlatformConfig) -> exports.S3Exports | exports.LocalExports:
    """S3 with SSE-KMS (`exports.location: s3://...`), else encrypted files in the data dir."""
    settings = platform.exports
    if settings.location:
        return exports.S3Exports(settings.location, settings.region or None)
    root = database.data_dir() / "exports"
    return exports.LocalExports(root, postgres.load_master_key(database.data_dir()))


def tenant_objects(platform: PlatformConfig, cluster: str) -> tenant_resources.TenantObjects:
    """The Tenant custom resources on `cluster` (its context in platform.clusters)."""
    if cluster not in platform.clusters:
        where = SourceLocation("platform.yaml", None, f"platform.clusters.{cluster}")
        raise ConfigError([(where, f"no cluster '{cluster}' is configured")])
    context = platform.clusters[cluster].context
    api = kubernetes_driver.connect(platform.kubernetes.kubeconfig, context, cluster=cluster)
    resource = (tenant_crd.GROUP, tenant_crd.VERSION, tenant_crd.PLURAL)
    return tenant_resources.TenantObjects(api, resource, cluster=cluster)


def rbac_rules() -> list[tuple[str, str, tuple[str, ...]]]:
    """(apiGroup, resource, verbs) the control plane needs on a cluster: the Helm ClusterRole.

    What the live drivers call, plus what the tenant workload Role grants: the API server
    lets a client create a Role only with permissions it holds itself (RBAC escalation
    prevention), and tenantctl is given no `escalate` or `bind`.
    """
    granted = [
        (group, resource, tuple(rule["verbs"]))
        for rule in cast(list[dict[str, list[str]]], kubernetes_rbac.rules(""))
        if not rule.get("resourceNames")
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    ]
    merged: dict[tuple[str, str], set[str]] = {}
    for group, resource, verbs in (
        *kubernetes_driver.rbac_rules(),
        *tenant_resources.rbac_rules(tenant_crd.GROUP, tenant_crd.PLURAL),
        *granted,
    ):
        merged.setdefault((group, resource), set()).update(verbs)
    return [(group, resource, tuple(sorted(verbs))) for (group, resource), verbs in merged.items()]
