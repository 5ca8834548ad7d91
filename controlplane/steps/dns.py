"""`dns`: the tenant's proxied `<subdomain>.<base_domain>` CNAME and custom hostnames.

The step is a thin reconcile over a `DnsProvider`: the live Cloudflare driver or the
render-mode file writer. Desired state comes from the pure `resources.dns`; the provider
observes, refuses collisions before writing, and converges. Outputs record where each
custom hostname stands (and what the tenant must publish) for `tenantctl describe`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Protocol

from controlplane.engine.steps import Change, StepContext, StepResult, fingerprint_of
from controlplane.models.dns import CustomHostnameStatus, DnsChange, DnsReport, TenantDns
from controlplane.models.operations import StepName
from controlplane.resources import dns as dns_resources

__all__ = ["DnsProvider", "DnsStep", "hostnames_json"]


class DnsProvider(Protocol):
    """Converges one tenant's DNS: `drivers.cloudflare.CloudflareDns` (live) and
    `drivers.dns_files.RenderedDns` (render)."""

    def plan(self, desired: TenantDns) -> list[DnsChange]:
        """What `apply` would change (reads only)."""
        ...

    def apply(self, desired: TenantDns) -> DnsReport:
        """Create or adopt; ConflictError, with nothing changed, on a collision."""
        ...

    def verify(self, desired: TenantDns) -> list[str]:
        """Problems with what exists (empty when converged)."""
        ...

    def destroy(self, desired: TenantDns) -> list[DnsChange]:
        """Remove only what this tenant owns."""
        ...

    def status(self, desired: TenantDns) -> list[CustomHostnameStatus]:
        """Verification/certificate status of each custom hostname."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """Observe in bulk: inside the block, reads of many tenants share one zone listing."""
        ...


def hostnames_json(statuses: list[CustomHostnameStatus] | tuple[CustomHostnameStatus, ...]) -> str:
    """Custom hostname statuses as a JSON string (step outputs are str -> str)."""
    return json.dumps([asdict(s) for s in statuses], sort_keys=True)


def recorded_hostnames(outputs: Mapping[str, str]) -> list[dict[str, object]]:
    """The custom hostname statuses a `dns` step recorded (the reader of `hostnames_json`)."""
    found: list[dict[str, object]] = json.loads(outputs.get("custom_hostnames", "[]"))
    return found


@dataclass(frozen=True)
class DnsStep:
    """Reconcile the tenant's DNS through `provider`."""

    provider: DnsProvider
    name: StepName = field(default=StepName("dns"))

    def fingerprint(self, ctx: StepContext) -> str:
        desired = dns_resources.desired(ctx.tenant, ctx.platform)
        return fingerprint_of(self.name, desired.document, ctx.platform.cloudflare_zone_id)

    def plan(self, ctx: StepContext) -> list[Change]:
        desired = dns_resources.desired(ctx.tenant, ctx.platform)
        # Targets as the provider names them: `CNAME/<name>`, `custom-hostname/<host>`, or
        # the rendered file's path (a `dns/` prefix made `dns/out/<id>/dns.yaml` of it).
        return [Change(c.action, c.target, c.detail) for c in self.provider.plan(desired)]

    def apply(self, ctx: StepContext) -> StepResult:
        desired = dns_resources.desired(ctx.tenant, ctx.platform)
        report = self.provider.apply(desired)
        written = [c for c in report.changes if c.action != "noop"]
        return StepResult(
            {
                "hostname": desired.origin,
                "changes": ", ".join(f"{c.action} {c.target}" for c in written) or "none",
                "custom_hostnames": hostnames_json(report.hostnames),
            }
        )

    def verify(self, ctx: StepContext) -> list[str]:
        return self.provider.verify(dns_resources.desired(ctx.tenant, ctx.platform))

    def destroy(self, ctx: StepContext) -> None:
        self.provider.destroy(dns_resources.desired(ctx.tenant, ctx.platform))
