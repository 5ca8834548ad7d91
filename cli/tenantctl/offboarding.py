"""`tenantctl export | delete | purge | restore`: offboarding, with live step progress.

Registered on the main app by `register` (argument parsing, confirmation, progress and
error mapping only; the flows are in `controlplane.service.offboarding`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from controlplane import service
from controlplane.service import lifecycle, offboarding, upgrading
from tenantctl.lifecycle import LockTimeout, ProgressCommands, Yes
from tenantctl.output import Format, emit
from tenantctl.remote import Remote, RemoteError

__all__ = ["register"]

Tenant = Annotated[str, typer.Argument(help="Tenant id.")]
Run1 = Callable[[service.Session], lifecycle.Outcome]
_NOT_PURGED = "not purged: "  # how the service words a refusal
_CANDIDATE_COLUMNS = ["tenant", "status", "purge_after", "export_sha256", "hostnames", "purge"]


def register(app: typer.Typer, shell: ProgressCommands, out: Console) -> None:
    """Add `export`, `delete`, `purge` and `restore` to `app` (listings go to `out`)."""
    mine = _Commands(shell, out)
    app.command()(mine.export)
    app.command()(mine.delete)
    app.command()(mine.purge)
    app.command()(mine.restore)


class _Commands:
    def __init__(self, shell: ProgressCommands, out: Console) -> None:
        self._shell = shell
        self._out = out

    def _confirm(self, question: str, yes: bool, *, required: bool) -> None:
        """Ask on a terminal unless `yes`; without one, `required` needs --yes (exit 2)."""
        if yes:
            return
        if sys.stdin.isatty():
            typer.confirm(question, abort=True)
        elif required:
            self._shell._fail(f"{question.rstrip('?')}: confirm with --yes (no terminal)", 2)

    def _one(self, tenant: str, kind: str, lock_timeout: float, run: Run1) -> None:
        session = self._shell._call(lambda: lifecycle.open_session(lock_wait=lock_timeout))
        self._shell._run_recorded(session, tenant, kind, lambda: run(session))

    def export(self, tenant: Tenant, lock_timeout: LockTimeout = 30.0) -> None:
        """Take a verified, encrypted export of a tenant's data; the tenant stays as it is.

        `pg_dump -Fc` of its schema (standard) or database (enterprise, premium) plus a
        manifest (spec, hostnames, sizes, sha256), written to `platform.exports.location`
        (S3 with SSE-KMS under the tenant's key; default: encrypted files in the data dir),
        read back and checked with `pg_restore --list`. `describe` lists the exports.

        Example: tenantctl export tenant-100
        """
        path = f"/v1/tenants/{tenant}/export"
        if self._shell._remotely(offboarding.EXPORT, "POST", path) is None:
            self._one(
                tenant, offboarding.EXPORT, lock_timeout, lambda s: offboarding.export(s, tenant)
            )

    def delete(
        self,
        tenant: Tenant,
        force: Annotated[
            bool,
            typer.Option("--force", help="Delete although lifecycle.deletion_protection is on."),
        ] = False,
        yes: Yes = False,
        lock_timeout: LockTimeout = 30.0,
    ) -> None:
        """Delete a tenant: traffic off, a verified export, then `deleted` for its retention.

        Refused (exit 4, audited) while `lifecycle.deletion_protection` is on, unless
        `--force` (confirmed on a terminal, or with `--yes`). The data stays until `purge`
        after `lifecycle.retention_days`; until then `restore` brings the tenant back.

        Example: tenantctl delete corner-cafe --yes
        """
        if force:
            question = f"delete tenant '{tenant}' despite its deletion protection?"
            self._confirm(question, yes, required=True)
        else:
            self._confirm(f"delete tenant '{tenant}' (its traffic stops)?", yes, required=False)
        path, query = f"/v1/tenants/{tenant}", {"force": str(force).lower()}
        if self._shell._remotely(offboarding.DELETE, "DELETE", path, params=query) is None:
            self._one(
                tenant,
                offboarding.DELETE,
                lock_timeout,
                lambda s: offboarding.delete(s, tenant, force=force),
            )

    def restore(self, tenant: Tenant, lock_timeout: LockTimeout = 30.0) -> None:
        """Bring a deleted, not yet purged tenant back: login, network, DNS, active.

        Example: tenantctl restore corner-cafe
        """
        path = f"/v1/tenants/{tenant}/restore"
        if self._shell._remotely(offboarding.RESTORE, "POST", path) is None:
            self._one(
                tenant, offboarding.RESTORE, lock_timeout, lambda s: offboarding.restore(s, tenant)
            )

    def purge(
        self,
        tenants: Annotated[
            list[str] | None,
            typer.Argument(help="Tenant ids (default: every deleted tenant past its date)."),
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="List what would go; change nothing.")
        ] = False,
        without_export: Annotated[
            bool,
            typer.Option(
                "--without-export",
                help="Purge tenants that have no verified export too (confirmed, audited).",
            ),
        ] = False,
        yes: Yes = False,
        output: Annotated[
            Format, typer.Option("-o", "--output", help="--dry-run listing: table, json, yaml.")
        ] = Format.TABLE,
        lock_timeout: LockTimeout = 30.0,
    ) -> None:
        """Remove deleted tenants past their purge date, for good.

        In reverse onboarding order: DNS records and custom hostnames, network, config and
        compute objects, the database (`terraform destroy`, roles too); then the tenant's
        key is scheduled for deletion (crypto-shredding its exports) and a purge receipt
        goes to the audit log. A tenant without a verified export is refused (exit 4,
        audited) unless `--without-export`. Named tenants must be past their date too.
        With no tenant named, the copies tier changes retired go too once their retention
        has passed (each named on stderr).

        Examples: tenantctl purge --dry-run · tenantctl purge corner-cafe --yes
        """
        api = self._shell._remote()
        one: Callable[[offboarding.Candidate], int]
        sweep: Callable[[], list[upgrading.Retired]]
        if api is None:
            session = self._shell._call(lambda: lifecycle.open_session(lock_wait=lock_timeout))
            found = self._shell._call(lambda: offboarding.purgeable(session, tenants))
            one = partial(self._purge_one, session, without_export=without_export)
            sweep = partial(upgrading.purge_retired, session, now=session.clock())
        else:
            found = self._shell._call(lambda: _candidates(api, tenants))
            one = partial(self._purge_remotely, api, without_export=without_export)
            sweep = partial(_retired, api)
        if dry_run:
            rows = [_row(c) for c in found]
            emit(self._out, rows, output, columns=_CANDIDATE_COLUMNS, title="purge")
            return
        due = [c for c in found if not c.refusal]
        if without_export:
            question = "purge tenants without a verified export (their data is then gone)?"
            self._confirm(question, yes, required=True)
        if due:
            names = ", ".join(c.tenant_id for c in due)
            self._confirm(f"purge {names} (irreversible)?", yes, required=False)
        codes = [one(c) for c in found if c.refusal == ""]
        codes += [self._refused(c.tenant_id, c.refusal) for c in found if c.refusal and tenants]
        removed = [] if tenants else [r for r in self._shell._call(sweep) if r.removed]
        for copy in removed:
            self._shell._err.print(
                f"tenant '{copy.tenant_id}': retired copy {copy.location} removed", highlight=False
            )
        if not codes and not removed:
            self._shell._err.print("nothing to purge", highlight=False)
        if any(codes):
            raise typer.Exit(max(codes))

    def _purge_one(
        self, session: service.Session, candidate: offboarding.Candidate, *, without_export: bool
    ) -> int:
        tenant = candidate.tenant_id

        def run() -> lifecycle.Outcome:
            return offboarding.purge(session, tenant_ids=[tenant], without_export=without_export)[0]

        if candidate.unexported and not without_export:
            outcome = self._shell._call(run)  # refused (and audited) before any step
            return self._refused(tenant, outcome.message.removeprefix(_NOT_PURGED))
        try:
            self._shell._run_recorded(session, tenant, offboarding.PURGE, run)
        except typer.Exit as stop:
            return int(stop.exit_code or 0)
        return 0

    def _purge_remotely(
        self, api: Remote, candidate: offboarding.Candidate, *, without_export: bool
    ) -> int:
        """`_purge_one` through the API: the server refuses (and audits) an unexported
        tenant without --without-export before any step, as a local run does."""
        tenant = candidate.tenant_id
        path, query = f"/v1/tenants/{tenant}/purge", {"without_export": str(without_export).lower()}

        def submit() -> dict[str, str] | RemoteError:
            try:
                accepted: dict[str, str] = api.call("POST", path, params=query)
            except RemoteError as refused:
                if refused.message.startswith(_NOT_PURGED):
                    return refused
                raise
            return accepted

        answer = self._shell._call(submit)
        if isinstance(answer, RemoteError):
            return self._refused(tenant, answer.message.removeprefix(_NOT_PURGED))
        try:
            self._shell._track(api, offboarding.PURGE, answer)
        except typer.Exit as stop:
            return int(stop.exit_code or 0)
        return 0

    def _refused(self, tenant: str, why: str) -> int:
        self._shell._err.print(
            f"[red]error:[/red] tenant '{escape(tenant)}': not purged: {escape(why)}",
            highlight=False,
            soft_wrap=True,
        )
        return 4


def _candidates(api: Remote, tenants: list[str] | None) -> list[offboarding.Candidate]:
    """`offboarding.purgeable` through the API."""
    found = api.call("GET", "/v1/purge-candidates", params={"tenant": tenants or []})["items"]
    return [
        offboarding.Candidate(
            c["tenant_id"],
            c["status"],
            datetime.fromisoformat(c["purge_after"]) if c["purge_after"] else None,
            c["export_checksum"],
            tuple(c["hostnames"]),
            c["refusal"],
            c["resuming"],
        )
        for c in found
    ]


def _retired(api: Remote) -> list[upgrading.Retired]:
    """`upgrading.purge_retired` (of every due copy) through the API."""
    found = api.call("POST", "/v1/purge-retired")["items"]
    return [
        upgrading.Retired(
            c["tenant_id"], c["tier"], c["location"], datetime.fromisoformat(c["due"]), c["removed"]
        )
        for c in found
    ]


def _row(candidate: offboarding.Candidate) -> dict[str, object]:
    return {
        "tenant": candidate.tenant_id,
        "status": candidate.status,
        "purge_after": candidate.purge_after,
        "export_sha256": candidate.export_checksum or "none",
        "hostnames": ", ".join(candidate.hostnames),
        "purge": candidate.refusal or "yes",
    }
