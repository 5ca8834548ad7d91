"""tenantctl — provision and run the tenants of the platform.

Argument parsing, output and error mapping only; all behaviour is in
`controlplane.service`.
"""

from __future__ import annotations

import gc
import json
import logging
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape

from controlplane import service
from controlplane.service import ControlPlaneError, StepEvent
from tenantctl import deployment as _deployment
from tenantctl import lifecycle as _lifecycle
from tenantctl import offboarding as _offboarding
from tenantctl import reconciling as _reconciling
from tenantctl import remote
from tenantctl import upgrading as _upgrading
from tenantctl.output import Format, emit
from tenantctl.remote import Remote

__all__ = ["app"]

EXIT_CODES = """
Exit codes: 0 ok · 1 unexpected error (details with --debug) · 2 invalid input ·
3 not found · 4 conflict (lock held, name taken, blast-radius guard) ·
5 outside system failed ·
6 a step failed (see `tenantctl describe TENANT`) · 7 `diff`/`drift` found differences ·
8 not authorised (API tokens) · 130 interrupted (Ctrl-C; the next run resumes).
"""

app = typer.Typer(
    help="Provision and run the tenants of a multi-tenant SaaS platform.\n" + EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Markdown joins a docstring's lines into paragraphs that rich wraps at the terminal
    # width, instead of breaking the source lines mid-sentence on narrow terminals.
    rich_markup_mode="markdown",
)
# Pipes and CI logs have no terminal width; rich would squeeze tables into 80 columns.
_WIDTH = None if sys.stdout.isatty() else 160
out = Console(width=_WIDTH)
err = Console(stderr=True, width=_WIDTH)

Files = Annotated[
    list[Path],
    typer.Option("-f", "--file", help="Tenant YAML file or directory (repeatable)."),
]
PlatformOpt = Annotated[
    Path | None,
    typer.Option("--platform", help="platform.yaml (default: the one beside the tenant files)."),
]
Output = Annotated[Format, typer.Option("-o", "--output", help="table, json or yaml.")]
OutDir = Annotated[
    Path,
    typer.Option("--out", help="Render mode output folder (`OUT/<tenant-id>/...`)."),
]
DIFF_FOUND = 7
INTERRUPTED = 130
_state: dict[str, Any] = {"debug": False, "server": None, "remote": None}
T = TypeVar("T")
# What `--server` runs through the API; every other command refuses it (exit 2).
REMOTE_COMMANDS = frozenset(
    {
        *("get", "describe", "audit", "verify", "create", "suspend", "resume"),
        *("export", "delete", "restore", "purge", "upgrade", "downgrade"),
        *("token", "login", "schema", "crd"),
    }
)


class _Lowercase(logging.Formatter):
    """`warning: message`, like the CLI's own errors (no `WARNING:controlplane...`)."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info and _state["debug"]:
            text += "\n" + self.formatException(record.exc_info)
        return text


@app.callback()
def _main(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="TENANTCTL_SERVER",
            help="Run the command through the HTTP API at this URL (token from "
            "TENANTCTL_TOKEN or `tenantctl login`), e.g. --server https://tenantctl.internal.",
        ),
    ] = None,
) -> None:
    _state.update(debug=debug, server=server, remote=None)
    if server and ctx.invoked_subcommand not in REMOTE_COMMANDS:
        _error(
            f"`tenantctl {ctx.invoked_subcommand}` has no API equivalent: run it without "
            f"--server, where the state store is (remote: {', '.join(sorted(REMOTE_COMMANDS))})"
        )
        raise typer.Exit(2)
    # Our own handler on the library's logger: whatever else configured logging (a test
    # runner, an embedding program) the warnings reach this command's stderr, once.
    logger = logging.getLogger("controlplane")
    for old in [h for h in logger.handlers if isinstance(h.formatter, _Lowercase)]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Lowercase())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    logger.propagate = False


def _error(text: str) -> None:
    """One error line; the text is shown as is (brackets in field paths survive)."""
    err.print(f"[red]error:[/red] {escape(text)}", highlight=False, soft_wrap=True)


def _run(func: Callable[[], T]) -> T:
    """Call the service; map its errors to the exit-code table (1 only for a real bug)."""
    try:
        return func()
    except (click.exceptions.Exit, click.exceptions.Abort):
        raise
    except ControlPlaneError as exc:
        _error(exc.message)
        raise typer.Exit(exc.exit_code) from exc
    except Exception:
        if _state["debug"]:
            raise
        err.print(
            "[red]unexpected error[/red] (a bug in tenantctl); re-run with --debug for details"
        )
        raise typer.Exit(1) from None


@app.command()
def validate(
    files: Files,
    platform: PlatformOpt = None,
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Check the files alone, not against the recorded tenants."),
    ] = False,
) -> None:
    """Check tenant files without changing anything.

    Every problem names file, line and field. Checks the schema, the platform rules
    (regions, residency, tier limits, domains) and collisions across files; then, when a
    state store exists (TENANTCTL_DATABASE_URL, or the embedded one after a first
    apply), ids and hostnames against the recorded tenants: a hostname another tenant
    keeps is exit 4, an id changed in an applied file exit 2.

    Example: tenantctl validate -f tenant-configs/
    """
    config, sources = _run(lambda: service.inputs.load(files, platform))
    if not offline and service.sessions.state_store_exists():
        session = _open()
        _run(lambda: service.planning.check_recorded(session, sources, config))
    out.print(f"[green]ok[/green]: {len(sources)} tenant file(s) valid")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the tenant file (for editors and CI).

    Example: tenantctl schema > tenant.schema.json
    """
    out.file.write(json.dumps(service.inputs.tenant_schema(), indent=2) + "\n")


def _open(**options: Any) -> service.Session:
    return _run(lambda: service.open_session(**options))


def _remote() -> Remote | None:
    """The API client when `--server` was given (one per command), else None: run locally."""
    server = _state["server"]
    if server and _state["remote"] is None:
        _state["remote"] = Remote(server, _run(lambda: remote.token_for(server)))
    found: Remote | None = _state["remote"]
    return found


def _source() -> tuple[Remote | None, Any]:
    """Where a read command's data comes from: the API (`--server`), else a local session."""
    api = _remote()
    return api, None if api else _open()


Prune = Annotated[
    bool,
    typer.Option(
        "--prune",
        help="Delete (through the delete flow, export first) recorded tenants whose file "
        "disappeared from a -f directory; without it they are only marked pending-deletion.",
    ),
]


@app.command()
def plan(
    files: Files, platform: PlatformOpt = None, prune: Prune = False, output: Output = Format.TABLE
) -> None:
    """Show what `apply` would change, per tenant and step. Changes nothing.

    Actions: create, update, tier-change, unchanged, suspended,
    observed (observe only), and pending-deletion (delete with --prune) for a tenant
    recorded from a file directly in a -f directory that is gone.

    Example: tenantctl plan -f tenant-configs/ -o yaml
    """
    config, sources = _run(lambda: service.inputs.load(files, platform))
    session = _open()
    scope = service.fleets.Scope.of(files)
    plans = _run(lambda: service.planning.plan(session, sources, config, scope=scope, prune=prune))
    rows = [
        {
            "tenant": p.tenant_id,
            "action": p.action,
            "fields": p.fields,
            "steps": _planned(p),
            "file": p.file,
        }
        for p in plans
    ]
    emit(out, rows, output, columns=["tenant", "action", "fields", "steps", "file"], title="plan")


def _planned(plan: service.planning.TenantPlan) -> list[str]:
    """The planned changes; a tier change's also say what it moves (tables, rows, method)."""
    detailed = plan.action == service.upgrading.KIND
    return [
        f"{c.action} {c.target}" + (f" ({c.detail})" if detailed and c.detail else "")
        for c in plan.steps
        if c.action != "noop"
    ]


@app.command()
def apply(
    files: Files,
    platform: PlatformOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan.")] = False,
    parallel: Annotated[int, typer.Option(min=1, max=64, help="Tenants converged at once.")] = 4,
    lock_timeout: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for a tenant locked by another run.")
    ] = 30.0,
    reconcile: Annotated[
        bool,
        typer.Option(
            "--reconcile",
            help="Also verify unchanged tenants and repair drift (reads every resource).",
        ),
    ] = False,
    queue: Annotated[
        bool,
        typer.Option(
            "--async",
            help="Queue the operations for `tenantctl worker` and print their ids; run nothing.",
        ),
    ] = False,
    prune: Prune = False,
    max_deletions: Annotated[
        int | None,
        typer.Option(
            "--max-deletions",
            min=0,
            help="Blast-radius guard: refuse (exit 4, nothing changed) a run that would delete "
            "or downgrade more tenants than this (default: platform.max_deletions, 1).",
        ),
    ] = None,
    output: Output = Format.TABLE,
    out_dir: OutDir = Path("out"),
) -> None:
    """Converge every tenant in the files: record, provision, activate.

    Idempotent: unchanged tenants cost no remote call, and an interrupted run resumes at
    the first unfinished step. Two runs on the same tenant never overlap (per-tenant lock);
    one tenant's failure never stops the others, and the exit code is the highest of the
    failed ones. With --reconcile, unchanged tenants are verified too and drift (e.g. a
    hand-edited NetworkPolicy that `tenantctl diff` reports) is reverted, except for
    observe-only tenants (reported as drifted). With --async, each tenant that needs work
    gets a queued operation (`queued`, with its id and status URL) that the workers run; a
    tenant with an operation already waiting in the queue fails (exit 4).

    A tenant recorded from a file directly in a -f directory whose file is gone is marked
    pending-deletion; --prune deletes it through the delete flow (export first). A run that
    would delete or downgrade more than --max-deletions tenants refuses before changing
    anything and names them (exit 4).

    Example: tenantctl apply -f tenant-configs/ --yes --prune --max-deletions 3 -o json
    """
    config, sources = _run(lambda: service.inputs.load(files, platform))
    if dry_run:
        plan(files, platform, prune, output)
        return
    if not yes and sys.stdin.isatty():
        typer.confirm(f"apply {len(sources)} tenant(s)?", abort=True)
    session = _open(lock_wait=lock_timeout, on_event=_progress, out_dir=out_dir, queue=queue)
    options = service.fleets.Options(
        parallel=parallel,
        reconcile=reconcile,
        prune=prune,
        max_deletions=max_deletions,
        scope=service.fleets.Scope.of(files),
    )
    with _interruptible(session):
        outcomes = _run(lambda: service.operations.apply(session, sources, config, options))
    emit_outcomes(outcomes, output, title="apply", queued=queue)
    _summarise(outcomes)


def emit_outcomes(
    outcomes: list[service.operations.ApplyOutcome],
    output: Format,
    *,
    title: str,
    queued: bool = False,
) -> None:
    """One row per tenant: what happened, its operation, and why (failures, drift); with
    `queued`, each queued operation's status URL."""
    rows: list[dict[str, str]] = [
        {
            "tenant": o.tenant_id,
            "result": o.action,
            "operation": o.operation_id,
            "message": o.message,
        }
        for o in outcomes
    ]
    columns = ["tenant", "result", "operation", "message"]
    if queued:
        for row in rows:
            row["status_url"] = f"/v1/operations/{row['operation']}" if row["operation"] else ""
        columns.append("status_url")
    emit(out, rows, output, columns=columns, title=title)


def _summarise(outcomes: list[service.operations.ApplyOutcome]) -> None:
    """Each failure once, the counts, and the exit code (130 when interrupted)."""
    failed = [o for o in outcomes if o.exit_code]
    for outcome in failed:
        _error(f"tenant '{outcome.tenant_id}': {outcome.message}")
    counts = Counter(o.action for o in outcomes)
    err.print(", ".join(f"{n} {action}" for action, n in sorted(counts.items())), highlight=False)
    stopped = [o.tenant_id for o in outcomes if o.action == "interrupted"]
    if stopped:
        err.print(
            f"[yellow]interrupted[/yellow]: {len(outcomes) - len(stopped) - len(failed)} "
            f"tenant(s) finished; {', '.join(stopped)} resume at their first unfinished "
            "step on the next `tenantctl apply`",
            highlight=False,
        )
    if failed:
        err.print(f"[red]{len(failed)} of {len(outcomes)} tenant(s) failed[/red]")
        raise typer.Exit(max(o.exit_code for o in failed))
    if stopped:
        raise typer.Exit(INTERRUPTED)


@contextmanager
def _interruptible(session: service.Session) -> Iterator[None]:
    """First Ctrl-C: finish the running steps, start no more, and say what resumes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(_signum: int, _frame: FrameType | None) -> None:
        if session.cancel.is_set():
            raise KeyboardInterrupt
        session.cancel.set()
        err.print(
            "[yellow]interrupting[/yellow]: finishing the running steps (Ctrl-C again to abort)"
        )

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _progress(event: StepEvent) -> None:
    if event.status == "progress":
        err.print(f"  [dim]… {escape(f'{event.tenant_id}: {event.step} — {event.message}')}[/dim]")
    elif event.status in ("done", "failed", "waiting_retry"):
        mark = {"done": "[green]✓[/green]", "failed": "[red]✗[/red]"}.get(
            event.status, "[yellow]↻[/yellow]"
        )
        detail = f" — {event.message}" if event.message else ""
        text = escape(f"{event.tenant_id}: {event.step} {event.status}{detail}")
        err.print(f"{mark} {text}", highlight=False)


@app.command()
def get(
    tenant: Annotated[
        str | None, typer.Argument(help="Tenant id (all tenants when omitted).")
    ] = None,
    output: Output = Format.TABLE,
) -> None:
    """List recorded tenants with tier, region and status.

    Example: tenantctl get -o json
    """
    columns = [
        "id",
        "name",
        "tier",
        "region",
        "status",
        "marks",
        "purge_after",
        "generation",
        "updated_at",
    ]
    api, session = _source()
    if tenant:
        row = _run(
            lambda: (
                api.call("GET", f"/v1/tenants/{tenant}")
                if api
                else service.queries.get(session, tenant)
            )
        )
        emit(out, {c: row[c] for c in columns}, output, columns=columns, title="tenant")
        return
    rows = _run(
        lambda: (
            api.pages("/v1/tenants", {}, limit=10**9)
            if api
            else service.queries.list_tenants(session)
        )
    )
    emit(
        out,
        [{c: r[c] for c in columns} for r in rows],
        output,
        columns=columns,
        title="tenants",
    )


@app.command()
def describe(tenant: str, output: Output = Format.YAML) -> None:
    """Show one tenant: spec, hostnames, operations and the state of each step.

    Example: tenantctl describe tenant-100
    """
    api, session = _source()
    detail = _run(
        lambda: (
            api.call("GET", f"/v1/tenants/{tenant}")
            if api
            else service.queries.describe(session, tenant)
        )
    )
    if output is Format.TABLE:
        emit(
            out,
            detail["steps"],
            output,
            columns=["name", "status", "attempts", "skipped", "next_attempt_at", "last_error"],
        )
        return
    emit(out, detail, output)


VerifyOut = Annotated[
    Path | None,
    typer.Option(
        "--out", help="Render folder to check (default: the one the tenant was applied with)."
    ),
]
VerifyPlatform = Annotated[
    Path | None,
    typer.Option(
        "--platform",
        help="platform.yaml to verify against (default: the config its last operation recorded).",
    ),
]


@app.command()
def verify(
    tenant: str,
    platform: VerifyPlatform = None,
    out_dir: VerifyOut = None,
    output: Output = Format.TABLE,
) -> None:
    """Check a tenant's real resources against its recorded spec (e.g. database isolation).

    Uses the platform config and render folder recorded with the tenant's last operation,
    so it works from any directory and any host. Exit 0 when every step verifies, 6 with
    the problems listed otherwise.

    Example: tenantctl verify bluebird
    """
    api, session = _source()
    if api and (platform or out_dir):
        _error("--platform and --out are local options: the API verifies what it recorded")
        raise typer.Exit(2)
    problems: list[str] = _run(
        lambda: (
            api.call("GET", f"/v1/tenants/{tenant}/verify")["problems"]
            if api
            else service.planning.verify(session, tenant, platform_file=platform, out_dir=out_dir)
        )
    )
    rows = [{"tenant": tenant, "problem": p} for p in problems]
    if output is not Format.TABLE:
        emit(out, {"tenant": tenant, "healthy": not problems, "problems": problems}, output)
    elif problems:
        emit(out, rows, output, columns=["tenant", "problem"], title="verify")
    else:
        out.print(f"[green]ok[/green]: {tenant} verified")
    if problems:
        raise typer.Exit(6)


@app.command()
def render(files: Files, platform: PlatformOpt = None, out_dir: OutDir = Path("out")) -> None:
    """Write every tenant's GitOps files: `OUT/<tenant-id>/kubernetes/` and `dns.yaml`.

    Byte-identical across runs (only changed files are rewritten), ready for Argo CD or
    Flux; platform objects (tier PriorityClasses) go to OUT/_platform/. Never writes a
    secret: database credentials are ExternalSecret references.

    Example: tenantctl render -f tenant-configs/ --out out/
    """
    config, sources = _run(lambda: service.inputs.load(files, platform))
    written = _run(lambda: service.rendering.render(sources, config, out_dir))
    out.print(
        f"[green]ok[/green]: {len(sources)} tenant(s) rendered under {out_dir}/, "
        f"{len(written)} file(s) changed",
        highlight=False,
    )


@app.command()
def diff(
    files: Files,
    platform: PlatformOpt = None,
    prune: Prune = False,
    output: Output = Format.TABLE,
    out_dir: OutDir = Path("out"),
) -> None:
    """Show the plan with field-level changes per tenant across database, Kubernetes, DNS.

    One plan per tenant (action as in `tenantctl plan`, then every change with its
    backend, object, field, wanted and live value), for review or a PR comment with
    `-o json`. Reads only (one snapshot per backend). Exit 0 when nothing would change,
    7 otherwise. Secret values are never shown.

    Example: tenantctl diff -f tenant-configs/ -o json
    """
    config, sources = _run(lambda: service.inputs.load(files, platform))
    session = _open(out_dir=out_dir)
    scope = service.fleets.Scope.of(files)
    plans = _run(lambda: service.planning.diff(session, sources, config, scope=scope, prune=prune))
    documents = [
        {
            "tenant": p.tenant_id,
            "action": p.action,
            "file": p.file,
            "fields": p.fields,
            "changes": p.changes,
        }
        for p in plans
    ]
    if output is Format.TABLE:
        rows = [
            {"tenant": p.tenant_id, "action": p.action, **c}
            for p in plans
            for c in p.changes or [{}]
        ]
        columns = ["tenant", "action", "backend", "object", "field", "want", "have"]
        emit(out, rows, output, columns=columns, title="diff")
    else:
        emit(out, documents, output)
    if any(p.changes or p.action not in ("unchanged", "suspended", "observed") for p in plans):
        raise typer.Exit(DIFF_FOUND)


@app.command()
def drift(files: Files, platform: PlatformOpt = None, output: Output = Format.TABLE) -> None:
    """Report drift across every backend: database, Kubernetes, DNS, records.

    Every step of every recorded tenant verifies its real resources (one snapshot per
    backend, compared in memory); nothing is changed. Exit 0 when all verify, 7 when
    there is drift. `tenantctl apply --reconcile` repairs what this reports.

    Example: tenantctl drift -f tenant-configs/ -o json
    """
    config, sources = _run(lambda: service.inputs.load(files, platform))
    session = _open()
    rows = _run(lambda: service.planning.drift(session, sources, config))
    emit(out, rows, output, columns=["tenant", "step", "problem"], title="drift")
    if rows:
        raise typer.Exit(DIFF_FOUND)


@app.command()
def audit(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    output: Output = Format.TABLE,
) -> None:
    """Show the append-only audit log, newest first.

    Example: tenantctl audit --tenant tenant-100 --limit 20
    """
    api, session = _source()
    rows = _run(
        lambda: (
            api.pages("/v1/audit", {"tenant": tenant} if tenant else {}, limit)
            if api
            else service.queries.audit(session, tenant, limit)
        )
    )
    emit(
        out,
        rows,
        output,
        columns=["id", "at", "actor", "tenant_id", "action", "detail"],
        title="audit",
    )


# The HTTP API and its tokens (issue 11): `tenantctl serve`, `tenantctl token ...`.
from tenantctl import serving  # noqa: E402 - registers on the app defined above

serving.register(app, _run, _remote)

# create, suspend, resume: one tenant's lifecycle (cli/tenantctl/lifecycle.py).
_lifecycle.register(app, run=_run, interruptible=_interruptible, err=err, remote=_remote)
_offboarding.register(app, _lifecycle.ProgressCommands(_run, _interruptible, err, _remote), out)

# crd and migrate: what the Helm chart runs besides serve and worker (cli/tenantctl/deployment.py).
_deployment.register(app, run=_run)

# `tenantctl worker`: runs queued operations (cli/tenantctl/working.py).
from tenantctl import working  # noqa: E402 - registers on the app defined above

working.register(app, _run, _progress)
# upgrade, downgrade: a tier change with the tenant's data (cli/tenantctl/upgrading.py).
_upgrading.register(app, _lifecycle.ProgressCommands(_run, _interruptible, err, _remote))

# reconcile [--watch], pause-reconcile, resume-reconcile (cli/tenantctl/reconciling.py).
_reconciling.register(app, run=_run, emit_outcomes=emit_outcomes, err=err)

# Everything imported so far lives as long as the process: out of every collection.
gc.freeze()

if __name__ == "__main__":
    app()
