"""`tenantctl upgrade | downgrade TENANT --tier T`: a tier change with the tenant's data.

Both run the one `tier-change` flow (`controlplane.service.upgrading`) under the live
step table of the lifecycle commands, locally or with `--server` through the API; the
end reports the rows moved and how long writes were frozen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from controlplane import service
from controlplane.service import lifecycle, upgrading
from tenantctl.lifecycle import LockTimeout, OutDirOpt, ProgressCommands

__all__ = ["register"]

TierOpt = Annotated[str, typer.Option("--tier", help="The tier to move to.")]
Tenant = Annotated[str, typer.Argument(help="Tenant id.")]


def register(app: typer.Typer, shell: ProgressCommands) -> None:
    """Add `upgrade` and `downgrade` to `app`."""
    mine = _Commands(shell)
    app.command()(mine.upgrade)
    app.command()(mine.downgrade)


class _Commands:
    def __init__(self, shell: ProgressCommands) -> None:
        self._shell = shell

    def upgrade(
        self,
        tenant: Tenant,
        tier: TierOpt,
        lock_timeout: LockTimeout = 30.0,
        out_dir: OutDirOpt = None,
    ) -> None:
        """Move a tenant to a higher tier with its data: the new tier's database, an online
        copy, a short write freeze for the last changes, per-table checksums (a difference
        rolls back), then placement, Secret and policies of the new tier. The old database
        is kept read-only for `lifecycle.retention_days`. Same flow as an `apply` whose tier
        changed; change `tier:` in the tenant's file too, or its next apply moves it back.

        Example: tenantctl upgrade tenant-100 --tier enterprise
        """
        self._change(tenant, tier, lock_timeout, out_dir, up=True)

    def downgrade(
        self,
        tenant: Tenant,
        tier: TierOpt,
        lock_timeout: LockTimeout = 30.0,
        out_dir: OutDirOpt = None,
    ) -> None:
        """Move a tenant to a lower tier with its data (the same flow as `upgrade`).

        Example: tenantctl downgrade tenant-100 --tier standard
        """
        self._change(tenant, tier, lock_timeout, out_dir, up=False)

    def _change(
        self, tenant: str, tier: str, lock_timeout: float, out_dir: Path | None, *, up: bool
    ) -> None:
        shell = self._shell
        path = f"/v1/tenants/{tenant}/{'upgrade' if up else 'downgrade'}"
        remote = shell._remotely(upgrading.KIND, "POST", path, out_dir=out_dir, json={"tier": tier})
        if remote is not None:
            moved = shell._remote_summary(remote)
        else:
            session = shell._call(lambda: lifecycle.open_session(lock_wait=lock_timeout))
            shell._call(lambda: upgrading.check_direction(session, tenant, tier, up=up))
            outcome = shell._run_recorded(
                session,
                tenant,
                upgrading.KIND,
                lambda: upgrading.change_tier(session, tenant, tier, out_dir=out_dir),
            )
            moved = service.operations.moved(session, outcome)
        if moved:
            shell._err.print(f"tenant '{tenant}': {moved}", highlight=False)
