"""The flow registry: operation kind -> ordered steps. The one runner runs any of them."""

from __future__ import annotations

from collections.abc import Callable

from controlplane.engine.steps import Step
from controlplane.errors import NotFoundError
from controlplane.flows import offboarding, onboarding, suspending, upgrading
from controlplane.flows.dependencies import Dependencies

__all__ = ["FLOWS", "steps_for"]

FLOWS: dict[str, Callable[[Dependencies], list[Step]]] = {
    onboarding.KIND: onboarding.steps,
    onboarding.RECONCILE: onboarding.steps,
    suspending.SUSPEND: suspending.suspend_steps,
    suspending.RESUME: suspending.resume_steps,
    offboarding.EXPORT: offboarding.export_steps,
    offboarding.DELETE: offboarding.delete_steps,
    offboarding.PURGE: offboarding.purge_steps,
    offboarding.RESTORE: offboarding.restore_steps,
    upgrading.KIND: upgrading.steps,
}


def steps_for(kind: str, deps: Dependencies) -> list[Step]:
    """The steps of flow `kind`, in order; NotFoundError for an unknown kind."""
    try:
        build = FLOWS[kind]
    except KeyError:
        msg = f"no flow '{kind}': known flows are {', '.join(sorted(FLOWS))}"
        raise NotFoundError(msg) from None
    return build(deps)
