"""The DNS a tenant needs, and what Cloudflare reports back, as plain typed data.

Shared by the pure renderer (`resources/dns.py`), the `dns` step and the drivers, which
may import only models: the desired records go down, observed statuses come back up.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CustomHostnameStatus",
    "DnsChange",
    "DnsRecord",
    "DnsReport",
    "PublishRecord",
    "TenantDns",
    "ownership_comment",
    "parse_ownership",
]

_MARKER = "managed-by=tenantctl"


def ownership_comment(owner: str, tenant_id: str) -> str:
    """The comment that marks a record as this control plane's, for this tenant."""
    return f"{_MARKER} owner={owner} tenant={tenant_id}"


def parse_ownership(comment: str | None) -> tuple[str, str] | None:
    """(owner, tenant) from a record comment, or None when tenantctl did not write it."""
    words = (comment or "").split()
    if _MARKER not in words:
        return None
    pairs = dict(w.split("=", 1) for w in words if "=" in w)
    return pairs.get("owner", ""), pairs.get("tenant", "")


@dataclass(frozen=True)
class DnsRecord:
    """One DNS record the tenant needs (names are lowercase FQDNs)."""

    type: str
    name: str
    content: str
    proxied: bool = True
    ttl: int = 1


@dataclass(frozen=True)
class TenantDns:
    """Everything the `dns` step converges for one tenant.

    Attributes:
        tenant_id: the tenant.
        owner: the control plane's owner id (platform `dns_owner_id`).
        zone: the platform's zone (base domain).
        records: records in the platform zone (the proxied subdomain CNAME).
        custom_hostnames: Cloudflare for SaaS hostnames the tenant brings.
        origin: where custom hostnames must CNAME to (the tenant's subdomain).
        document: the rendered `dns.yaml` (render mode writes exactly this).
    """

    tenant_id: str
    owner: str
    zone: str
    records: tuple[DnsRecord, ...]
    custom_hostnames: tuple[str, ...]
    origin: str
    document: str = ""

    @property
    def comment(self) -> str:
        """The ownership comment every record of this tenant carries."""
        return ownership_comment(self.owner, self.tenant_id)

    @property
    def tags(self) -> tuple[str, ...]:
        """Ownership tags (written only where the zone's plan allows record tags)."""
        return (f"tenantctl-owner:{self.owner}", f"tenantctl-tenant:{self.tenant_id}")


@dataclass(frozen=True)
class DnsChange:
    """One difference: `create`, `update`, `adopt`, `delete` or `noop` on a target."""

    action: str
    target: str
    detail: str = ""


@dataclass(frozen=True)
class PublishRecord:
    """A record the tenant must publish in its own DNS (or an HTTP token to serve)."""

    purpose: str
    type: str
    name: str
    value: str


@dataclass(frozen=True)
class CustomHostnameStatus:
    """Verification and certificate state of one custom hostname."""

    hostname: str
    status: str
    ssl_status: str
    publish: tuple[PublishRecord, ...] = ()
    errors: tuple[str, ...] = ()
    id: str = ""

    @property
    def active(self) -> bool:
        """True once both the hostname and its certificate are active."""
        return self.status == "active" and self.ssl_status == "active"


@dataclass(frozen=True)
class DnsReport:
    """What `apply` did, and where the tenant's custom hostnames stand now."""

    changes: tuple[DnsChange, ...]
    hostnames: tuple[CustomHostnameStatus, ...] = ()
