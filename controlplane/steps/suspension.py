"""The steps of `suspend` and `resume`: traffic off and back on, data untouched.

Suspend holds the tenant first (status `suspending`: `record` then refuses every
apply), takes ingress off (`resources.suspension.network`), points DNS at the
platform's suspended target, stops the app role logging in (NOLOGIN, its sessions
ended) and marks the tenant `suspended`. Resume lets the role log in again and runs the
onboarding `network`, `dns` and `activate` steps, which converge back to the normal
objects and check health before the tenant is `active` again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controlplane.engine.steps import Change, StepContext, StepResult, fingerprint_of
from controlplane.engine.stores import TenantRegistry
from controlplane.errors import ConflictError
from controlplane.models.dns import TenantDns
from controlplane.models.operations import StepName
from controlplane.resources import suspension
from controlplane.resources.kubernetes import bundles
from controlplane.steps import dns, importing
from controlplane.steps import kubernetes as kubernetes_steps

__all__ = ["DnsTargetStep", "IngressStep", "LoginStep", "StatusStep"]


@dataclass(frozen=True)
class StatusStep:
    """Set the tenant's status; done when it is one of `accepted`."""

    registry: TenantRegistry
    status: str
    accepted: frozenset[str]
    name: StepName

    def fingerprint(self, ctx: StepContext) -> str:
        return fingerprint_of(self.name, self.status, ctx.tenant.id)

    def plan(self, ctx: StepContext) -> list[Change]:
        if self.verify(ctx):
            return [Change("update", f"tenant/{ctx.tenant.id}", f"status -> {self.status}")]
        return [Change("noop", f"tenant/{ctx.tenant.id}")]

    def apply(self, ctx: StepContext) -> StepResult:
        self.registry.set_status(ctx.tenant.id, self.status)
        return StepResult({"status": self.status})

    def verify(self, ctx: StepContext) -> list[str]:
        status = self.registry.get_tenant(ctx.tenant.id)["status"]
        if status not in self.accepted:
            return [f"status is {status}, not {self.status}"]
        return []

    def destroy(self, ctx: StepContext) -> None:
        del ctx


@dataclass(frozen=True)
class IngressStep:
    """The network component without the ingress allow (plus the mesh DENY)."""

    backend: kubernetes_steps.KubernetesBackend
    name: StepName = field(default=StepName("suspend.ingress"))

    def fingerprint(self, ctx: StepContext) -> str:
        return fingerprint_of(
            self.name,
            ctx.platform.modes.kubernetes.value,
            suspension.network(ctx.tenant, ctx.platform),
        )

    def plan(self, ctx: StepContext) -> list[Change]:
        found = self.verify(ctx)
        target = f"kubernetes/{ctx.tenant.id}/{bundles.NETWORK}"
        return [Change("update", target, "ingress denied")] if found else [Change("noop", target)]

    def apply(self, ctx: StepContext) -> StepResult:
        scope = kubernetes_steps.scope_for(ctx, bundles.NETWORK)
        desired = suspension.network(ctx.tenant, ctx.platform)
        force = ctx.platform.kubernetes.force_conflicts
        changes = self.backend.converge(scope, desired, force=force)
        return StepResult({"changes": ", ".join(f"{c.action} {c.target}" for c in changes)})

    def verify(self, ctx: StepContext) -> list[str]:
        scope = kubernetes_steps.scope_for(ctx, bundles.NETWORK)
        desired = suspension.network(ctx.tenant, ctx.platform)
        return [str(d) for d in self.backend.differences(scope, desired)]

    def destroy(self, ctx: StepContext) -> None:
        del ctx  # resume converges the normal network component


@dataclass(frozen=True)
class DnsTargetStep:
    """The tenant's record on the platform's suspended target."""

    provider: dns.DnsProvider
    name: StepName = field(default=StepName("suspend.dns"))

    @staticmethod
    def _desired(ctx: StepContext) -> TenantDns:
        return suspension.dns(ctx.tenant, ctx.platform)

    def fingerprint(self, ctx: StepContext) -> str:
        zone = ctx.platform.cloudflare_zone_id
        return fingerprint_of(self.name, self._desired(ctx).document, zone)

    def plan(self, ctx: StepContext) -> list[Change]:
        changes = self.provider.plan(self._desired(ctx))
        return [Change(c.action, f"dns/{c.target}", c.detail) for c in changes]

    def apply(self, ctx: StepContext) -> StepResult:
        self.provider.apply(self._desired(ctx))
        return StepResult({"target": suspension.suspended_target(ctx.platform)})

    def verify(self, ctx: StepContext) -> list[str]:
        return self.provider.verify(self._desired(ctx))

    def destroy(self, ctx: StepContext) -> None:
        del ctx  # resume's `dns` step points the record back


@dataclass(frozen=True)
class LoginStep:
    """The app role may log in (`login`) or not; NOLOGIN also ends its sessions."""

    data: importing.TenantData
    login: bool
    name: StepName

    def _role(self, ctx: StepContext) -> tuple[str, str]:
        where = importing.target_of(ctx)
        if where.private:
            msg = (
                f"tenant '{ctx.tenant.id}': the app role of an RDS database cannot be switched "
                "from here yet (the platform VPC is private) — suspend it from inside the VPC"
            )
            raise ConflictError(msg)
        return where.target, where.expected["app_role"]

    def fingerprint(self, ctx: StepContext) -> str:
        return fingerprint_of(self.name, self.login, importing.target_of(ctx).expected)

    def plan(self, ctx: StepContext) -> list[Change]:
        target, role = self._role(ctx)
        action = "noop" if self.data.can_login(target, role) is self.login else "update"
        return [Change(action, f"role/{role}", "LOGIN" if self.login else "NOLOGIN")]

    def apply(self, ctx: StepContext) -> StepResult:
        target, role = self._role(ctx)
        self.data.set_login(target, role, login=self.login)
        return StepResult({"role": role, "login": str(self.login).lower()})

    def verify(self, ctx: StepContext) -> list[str]:
        target, role = self._role(ctx)
        found = self.data.can_login(target, role)
        if found is None:
            return [f"role {role} does not exist"]
        if found is not self.login:
            return [f"role {role} is {'NOLOGIN' if self.login else 'LOGIN'}"]
        return []

    def destroy(self, ctx: StepContext) -> None:
        del ctx
