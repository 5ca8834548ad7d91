"""Suspend and resume: take a tenant's traffic off with its data untouched, and back.

`suspend`: hold (status `suspending`, so no apply resumes it) -> ingress denied -> DNS on
the suspended target -> app role NOLOGIN -> `suspended`. `resume`: `resuming` -> app
role LOGIN -> the onboarding `network` and `dns` steps (back to the normal objects) ->
`activate` (health checks, then `active`). Each backend's steps run when its driver is
given; both flows need the tenant-data driver for the app role. `traffic_off` and
`traffic_on` are the middle of each, which `delete` and `restore` run too.
"""

from __future__ import annotations

from controlplane.engine.steps import Step
from controlplane.errors import ControlPlaneError
from controlplane.flows import onboarding
from controlplane.flows.dependencies import Dependencies
from controlplane.models.operations import StepName
from controlplane.steps import dns, importing, suspension
from controlplane.steps import kubernetes as kubernetes_steps

__all__ = ["RESUME", "SUSPEND", "resume_steps", "suspend_steps", "traffic_off", "traffic_on"]

SUSPEND = "suspend"
RESUME = "resume"
_SUSPENDING = frozenset({"suspending", "suspended"})


def _tenant_data(deps: Dependencies, kind: str) -> importing.TenantData:
    if deps.tenant_data is None:
        msg = f"flow '{kind}' needs the tenant database driver (Dependencies.tenant_data)"
        raise ControlPlaneError(msg)
    return deps.tenant_data


def suspend_steps(deps: Dependencies) -> list[Step]:
    """The suspend steps, in order."""
    return [
        suspension.StatusStep(deps.registry, "suspending", _SUSPENDING, StepName("suspend.hold")),
        *traffic_off(deps, SUSPEND),
        suspension.StatusStep(
            deps.registry, "suspended", frozenset({"suspended"}), StepName("suspend.mark")
        ),
    ]


def resume_steps(deps: Dependencies) -> list[Step]:
    """The resume steps, in order."""
    resuming = frozenset({"resuming", "active"})
    return [
        suspension.StatusStep(deps.registry, "resuming", resuming, StepName("resume.hold")),
        *traffic_on(deps, RESUME),
        onboarding.activate(deps),
    ]


def traffic_off(deps: Dependencies, kind: str) -> list[Step]:
    """Ingress denied, DNS on the suspended target, app role NOLOGIN (suspend, delete)."""
    data = _tenant_data(deps, kind)
    ordered: list[Step] = []
    if deps.kubernetes is not None:
        ordered.append(suspension.IngressStep(deps.kubernetes))
    if deps.dns_provider is not None:
        ordered.append(suspension.DnsTargetStep(deps.dns_provider))
    ordered.append(suspension.LoginStep(data, login=False, name=StepName("suspend.login")))
    return ordered


def traffic_on(deps: Dependencies, kind: str) -> list[Step]:
    """Login back, then the onboarding network and dns steps (resume, restore)."""
    ordered: list[Step] = [
        suspension.LoginStep(_tenant_data(deps, kind), login=True, name=StepName("resume.login"))
    ]
    if deps.kubernetes is not None:
        ordered.append(kubernetes_steps.NetworkStep(deps.kubernetes))
    if deps.dns_provider is not None:
        ordered.append(dns.DnsStep(deps.dns_provider))
    return ordered
