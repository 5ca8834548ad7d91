"""Render-mode DNS: a tenant's `dns.yaml` under the output directory, written instead of
calling Cloudflare (GitOps applies it through external-dns).

The live driver is `drivers.cloudflare.CloudflareDns`; both honour `steps.dns.DnsProvider`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from controlplane.models.dns import (
    CustomHostnameStatus,
    DnsChange,
    DnsReport,
    PublishRecord,
    TenantDns,
)

__all__ = ["RenderedDns"]


class RenderedDns:
    """Render mode: writes `<out>/<tenant-id>/dns.yaml` instead of calling Cloudflare."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Nothing to observe in bulk: files are read directly."""
        yield

    def _path(self, desired: TenantDns) -> Path:
        return self.out_dir / desired.tenant_id / "dns.yaml"

    def _current(self, desired: TenantDns) -> str | None:
        path = self._path(desired)
        return path.read_text(encoding="utf-8") if path.exists() else None

    def plan(self, desired: TenantDns) -> list[DnsChange]:
        """`create`, `update` or `noop` for the file."""
        current = self._current(desired)
        action = (
            "create" if current is None else "noop" if current == desired.document else "update"
        )
        return [DnsChange(action, str(self._path(desired)))]

    def apply(self, desired: TenantDns) -> DnsReport:
        """Write the file (only when its bytes change)."""
        changes = self.plan(desired)
        if changes[0].action != "noop":
            path = self._path(desired)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(desired.document, encoding="utf-8")
        return DnsReport(tuple(changes), tuple(self.status(desired)))

    def verify(self, desired: TenantDns) -> list[str]:
        """The file must hold exactly the rendered document."""
        current = self._current(desired)
        if current == desired.document:
            return []
        return [f"{self._path(desired)} is {'missing' if current is None else 'out of date'}"]

    def destroy(self, desired: TenantDns) -> list[DnsChange]:
        """Remove the file (GitOps then removes the records)."""
        path = self._path(desired)
        if not path.exists():
            return []
        path.unlink()
        return [DnsChange("delete", str(path))]

    def status(self, desired: TenantDns) -> list[CustomHostnameStatus]:
        """Render mode knows no live status: the CNAME each custom domain needs."""
        return [
            CustomHostnameStatus(
                host,
                "not-published (render mode)",
                "unknown",
                (PublishRecord("traffic", "CNAME", host, desired.origin),),
            )
            for host in desired.custom_hostnames
        ]
