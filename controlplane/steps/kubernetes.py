"""`compute`, `config` and `network`: a tenant's Kubernetes objects, one step per concern.

Each step owns one component of the tenant's objects (see `resources.kubernetes.bundles`)
and converges it through a `KubernetesBackend`: live (server-side apply, prune by
label inventory) or render (files for GitOps). `verify` is drift detection: it
compares desired and live objects field by field, so the engine re-applies a step
whose objects were changed by hand even when its input did not change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from controlplane.engine.steps import Change, StepContext, StepResult, fingerprint_of
from controlplane.models.kubernetes import FieldDifference, ObjectChange, Scope
from controlplane.models.operations import StepName
from controlplane.models.platform import DriverMode
from controlplane.resources.kubernetes import bundles, objects, placement
from controlplane.resources.kubernetes.objects import Json, Manifest

__all__ = [
    "DATABASE_STEP",
    "INVENTORY",
    "TENANT_KINDS",
    "ComputeStep",
    "ConfigStep",
    "KubernetesBackend",
    "NetworkStep",
    "PasswordSource",
    "database_credentials",
    "scope_for",
    "tenant_steps",
]

# The step whose outputs (role, database, host) go into the live Secret.
DATABASE_STEP = StepName("database")
# Labels on everything the control plane manages: the selector of a bulk snapshot.
INVENTORY = {objects.MANAGED_BY_LABEL: objects.MANAGED_BY}
# What every tenant's steps observe: a snapshot lists these together on each cluster.
TENANT_KINDS = tuple(dict.fromkeys(k for c in bundles.COMPONENTS for k in bundles.KINDS[c]))


class KubernetesBackend(Protocol):
    """`drivers.kubernetes.KubernetesClusters` (live) or `RenderedClusters` (files)."""

    def converge(
        self,
        scope: Scope,
        desired: Sequence[Manifest],
        *,
        force: bool = False,
        prune: bool = True,
    ) -> Sequence[ObjectChange]:
        """Make the scope hold exactly `desired`; no write when it already does."""
        ...

    def differences(self, scope: Scope, desired: Sequence[Manifest]) -> Sequence[FieldDifference]:
        """Field-level differences between desired and live (no writes)."""
        ...

    def remove(self, scope: Scope) -> Sequence[ObjectChange]:
        """Delete everything the scope owns (a namespace: wait until it is gone)."""
        ...

    def snapshot(
        self, inventory: Mapping[str, str], kinds: Sequence[tuple[str, str]] = ()
    ) -> AbstractContextManager[None]:
        """Observe in bulk: inside the block, each kind is listed once for all scopes (and
        `kinds` all at once, when a scope first observes a cluster)."""
        ...


class PasswordSource(Protocol):
    """Per-tenant database passwords (`drivers.postgres.DerivedPasswords`)."""

    def password(self, tenant_id: str, purpose: str = "db-app") -> str:
        """The tenant's password for `purpose`."""
        ...


def scope_for(ctx: StepContext, component: str) -> Scope:
    """The tenant's objects of one component, on the tenant's cluster."""
    return Scope(
        cluster=placement.cluster_for(ctx.tenant, ctx.platform),
        tenant_id=ctx.tenant.id,
        component=component,
        selector={
            objects.MANAGED_BY_LABEL: objects.MANAGED_BY,
            objects.TENANT_LABEL: ctx.tenant.id,
            objects.COMPONENT_LABEL: component,
        },
        kinds=bundles.KINDS[component],
    )


def _platform_scope(cluster: str) -> Scope:
    return Scope(
        cluster=cluster,
        tenant_id=bundles.PLATFORM_DIR,
        component=bundles.PLATFORM,
        selector={
            objects.MANAGED_BY_LABEL: objects.MANAGED_BY,
            objects.COMPONENT_LABEL: bundles.PLATFORM,
        },
        kinds=bundles.KINDS[bundles.PLATFORM],
    )


def database_credentials(ctx: StepContext, passwords: PasswordSource) -> dict[str, str]:
    """What the live Secret holds: the `database` step's outputs plus the password."""
    outputs = ctx.outputs.get(DATABASE_STEP, {})
    found = {
        "username": outputs.get("app_role", ""),
        "database": outputs.get("database", ""),
        "schema": outputs.get("schema", ""),
        "host": outputs.get("address", outputs.get("host", "")),
        "port": outputs.get("port", ""),
    }
    credentials = {k: v for k, v in found.items() if v}
    credentials["password"] = passwords.password(ctx.tenant.id)
    return credentials


def _without_secret_values(manifests: Sequence[Manifest]) -> list[Manifest]:
    """Manifests fit for a fingerprint: Secret values reduced to their keys."""
    safe: list[Manifest] = []
    for manifest in manifests:
        data = manifest.get("data")
        if manifest.get("kind") == "Secret" and isinstance(data, dict):
            keys: list[Json] = [str(k) for k in sorted(data)]
            safe.append({**manifest, "data": keys})
        else:
            safe.append(manifest)
    return safe


def _changes(found: Sequence[FieldDifference]) -> list[Change]:
    """Group field differences by object into create/update/delete changes."""
    by_target: dict[str, list[FieldDifference]] = {}
    for difference in found:
        by_target.setdefault(difference.target, []).append(difference)
    changes = []
    for target, items in by_target.items():
        whole = items[0] if items[0].path == "." else None
        if whole is not None and whole.have in ("<absent>",):
            changes.append(Change("create", target))
        elif whole is not None and whole.want == "<absent>":
            changes.append(Change("delete", target, "no longer desired"))
        else:
            changes.append(Change("update", target, ", ".join(d.path for d in items)))
    return changes


@dataclass(frozen=True)
class _KubernetesStep:
    """Converge one component of the tenant's objects through the backend."""

    backend: KubernetesBackend
    component: str = ""
    name: StepName = field(default=StepName("kubernetes"))

    def desired(self, ctx: StepContext) -> list[Manifest]:
        """The component's objects for this tenant."""
        return bundles.desired(ctx.tenant, ctx.platform, self.component)

    def fingerprint(self, ctx: StepContext) -> str:
        scope = scope_for(ctx, self.component)
        return fingerprint_of(
            self.name,
            scope.cluster,
            ctx.platform.modes.kubernetes.value,
            ctx.platform.kubernetes.force_conflicts,
            _without_secret_values(self.desired(ctx)),
        )

    def differences(self, ctx: StepContext) -> list[FieldDifference]:
        """Field-level differences between the desired and the live objects."""
        return list(self.backend.differences(scope_for(ctx, self.component), self.desired(ctx)))

    def plan(self, ctx: StepContext) -> list[Change]:
        changes = _changes(self.differences(ctx))
        return changes or [Change("noop", f"kubernetes/{ctx.tenant.id}/{self.component}")]

    def apply(self, ctx: StepContext) -> StepResult:
        scope = scope_for(ctx, self.component)
        force = ctx.platform.kubernetes.force_conflicts
        self.backend.converge(scope, self.desired(ctx), force=force)
        namespace = objects.namespace_name(ctx.tenant, ctx.platform)
        return StepResult({"cluster": scope.cluster, "namespace": namespace})

    def verify(self, ctx: StepContext) -> list[str]:
        return [str(d) for d in self.differences(ctx)]

    def destroy(self, ctx: StepContext) -> None:
        self.backend.remove(scope_for(ctx, self.component))


@dataclass(frozen=True)
class ComputeStep(_KubernetesStep):
    """Namespace, quotas, limit range, workload RBAC; and the tier PriorityClasses."""

    component: str = bundles.COMPUTE
    name: StepName = field(default=StepName("compute"))

    def apply(self, ctx: StepContext) -> StepResult:
        # Platform objects first: created once per cluster, never pruned with a tenant.
        cluster = placement.cluster_for(ctx.tenant, ctx.platform)
        self.backend.converge(
            _platform_scope(cluster), bundles.priority_classes(ctx.platform), prune=False
        )
        return super().apply(ctx)


@dataclass(frozen=True)
class ConfigStep(_KubernetesStep):
    """The ConfigMap and the database credentials (Secret live, ExternalSecret rendered).

    Live mode writes a Secret only when `passwords` is given; otherwise the credentials
    stay in the secret manager and an ExternalSecret references them, as in render mode.
    """

    passwords: PasswordSource | None = field(default=None, repr=False)
    component: str = bundles.CONFIG
    name: StepName = field(default=StepName("config"))

    def desired(self, ctx: StepContext) -> list[Manifest]:
        live = ctx.platform.modes.kubernetes is DriverMode.LIVE
        credentials = (
            database_credentials(ctx, self.passwords)
            if live and self.passwords is not None
            else None
        )
        return bundles.config(ctx.tenant, ctx.platform, credentials)


@dataclass(frozen=True)
class NetworkStep(_KubernetesStep):
    """NetworkPolicies (default deny + allows) and, in the mesh, Istio policies."""

    component: str = bundles.NETWORK
    name: StepName = field(default=StepName("network"))


def tenant_steps(
    backend: KubernetesBackend, passwords: PasswordSource | None = None
) -> list[_KubernetesStep]:
    """The Kubernetes steps of onboarding, in order: compute, config, network."""
    return [ComputeStep(backend), ConfigStep(backend, passwords=passwords), NetworkStep(backend)]
