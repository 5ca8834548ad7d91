"""`tenantctl create | suspend | resume`: one tenant's lifecycle, with live step progress.

Locally the runner's events feed the progress table; with `--server` the API runs the
operation and the polled steps feed the same table, and the same `_report` ends both.

Registered on the main app by `register` (argument parsing, progress and error mapping
only; the flows are in `controlplane.service.lifecycle`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, Protocol, TypeVar

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from controlplane import service
from controlplane.service import StepEvent, lifecycle
from tenantctl.remote import Remote

__all__ = ["LockTimeout", "ProgressCommands", "Run", "StepProgress", "Yes", "register"]

T = TypeVar("T")


class Run(Protocol):
    """The main app's error mapping: call the service, exit with the error's code."""

    def __call__(self, func: Callable[[], T]) -> T: ...


# How each step status is shown.
_MARKS = {
    "pending": ("·", "dim"),
    "running": ("…", "cyan"),
    "done": ("✓", "green"),
    "skipped": ("✓", "dim green"),
    "waiting_retry": ("↻", "yellow"),
    "failed": ("✗", "red"),
}


class StepProgress:
    """A live table of one operation's steps, fed by the runner's events."""

    def __init__(self, tenant_id: str, kind: str, steps: list[str]) -> None:
        self.title = f"{kind} {tenant_id}"
        self.steps: dict[str, tuple[str, str]] = dict.fromkeys(steps, ("pending", ""))
        self.began = False  # until a step starts: a refused run shows no table

    def __call__(self, event: StepEvent) -> None:
        self.began = True
        if event.status == "progress":
            # A driver's progress names its own step (terraform: `database`); in another
            # flow (purge.database) it belongs to whichever step is running.
            step = event.step if event.step in self.steps else self._running(event.step)
            status = self.steps.get(step, ("pending", ""))[0]
            self.steps[step] = (status, event.message)
        else:
            self.steps[event.step] = (event.status, event.message)

    def _running(self, default: str) -> str:
        running = [step for step, (status, _) in self.steps.items() if status == "running"]
        return running[0] if running else default

    def render(self) -> Table:
        """The table as it stands."""
        table = Table(title=self.title, show_header=True, title_justify="left")
        for column in ("", "step", "status", "detail"):
            table.add_column(column)
        for step, (status, detail) in self.steps.items():
            mark, style = _MARKS.get(status, ("?", ""))
            table.add_row(Text(mark, style=style), step, Text(status, style=style), detail)
        return table


@contextmanager
def _live(console: Console, progress: StepProgress) -> Iterator[None]:
    live = Live(
        get_renderable=lambda: Group(progress.render()) if progress.began else Group(),
        console=console,
        refresh_per_second=8,
        transient=False,
    )
    try:
        with live:
            yield
    finally:
        # Rich leaves a piped Live's last frame unterminated (a refused run drew none).
        if not console.is_terminal and progress.began:
            console.line()


def register(
    app: typer.Typer,
    *,
    run: Run,
    interruptible: Callable[[service.Session], AbstractContextManager[None]],
    err: Console,
    remote: Callable[[], Remote | None],
) -> None:
    """Add `create`, `suspend` and `resume` to `app`; with `--server` they run through the
    API (`remote()` is its client, or None for a local run)."""
    commands = _Commands(run, interruptible, err, remote)
    app.command()(commands.create)
    app.command()(commands.suspend)
    app.command()(commands.resume)


LockTimeout = Annotated[
    float, typer.Option(min=0, help="Seconds to wait for a tenant locked by another run.")
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
OutDirOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Render mode folder (default: the one the tenant last used)."),
]


class ProgressCommands:
    """Commands that run one tenant's operation with a live step table (lifecycle, offboarding)."""

    def __init__(
        self,
        run: Run,
        interruptible: Callable[[service.Session], AbstractContextManager[None]],
        err: Console,
        remote: Callable[[], Remote | None] = lambda: None,
    ) -> None:
        self._run = run
        self._interruptible = interruptible
        self._err = err
        self._remote = remote

    def _call(self, func: Callable[[], T]) -> T:
        return self._run(func)

    def _run_recorded(
        self,
        session: service.Session,
        tenant: str,
        kind: str,
        func: Callable[[], lifecycle.Outcome],
    ) -> lifecycle.Outcome:
        """Run `func` (flow `kind` of a recorded tenant) under a live table of its steps."""
        _, config, _ = self._call(lambda: lifecycle.recorded(session, tenant))
        steps = self._call(lambda: lifecycle.step_names(session, kind, config))
        return self._with_progress(session, StepProgress(tenant, kind, steps), func)

    def _with_progress(
        self,
        session: service.Session,
        progress: StepProgress,
        func: Callable[[], lifecycle.Outcome],
    ) -> lifecycle.Outcome:
        session.on_event = progress
        with self._interruptible(session), _live(self._err, progress):
            outcome = self._call(func)
        self._report(outcome)
        return outcome

    def _remotely(
        self, kind: str, method: str, path: str, *, out_dir: Path | None = None, **options: Any
    ) -> lifecycle.Outcome | None:
        """With `--server`: run the command's request through the API and follow it (its
        outcome); else None: the caller runs it locally. `--out` is a local option only."""
        api = self._remote()
        if api is None:
            return None
        if out_dir is not None:
            self._fail("--out is a local option: the API renders where it recorded", 2)
        return self._follow(api, kind, method, path, **options)

    def _follow(
        self, api: Remote, kind: str, method: str, path: str, **options: Any
    ) -> lifecycle.Outcome:
        """Submit a mutation to the API, then show its steps as they run, like `_with_progress`."""
        return self._track(api, kind, self._call(lambda: api.call(method, path, **options)))

    def _track(self, api: Remote, kind: str, accepted: dict[str, str]) -> lifecycle.Outcome:
        """Show an accepted operation's steps as they run, then report how it ended."""
        steps = self._call(lambda: api.steps_of(accepted))
        progress = StepProgress(accepted["tenant_id"], kind, steps)
        try:
            with _live(self._err, progress):
                outcome = self._call(lambda: api.follow(accepted, progress))
        except KeyboardInterrupt:
            self._err.print(
                f"[yellow]interrupted[/yellow]: operation {accepted['operation_id']} goes on "
                f"on the server — `tenantctl --server {api.server} describe "
                f"{accepted['tenant_id']}` shows it",
                highlight=False,
            )
            raise typer.Exit(130) from None
        self._report(outcome)
        return outcome

    def _remote_summary(self, outcome: lifecycle.Outcome) -> str:
        """What the API's record of a followed operation adds to its status (`summary`)."""
        api = self._remote()
        if api is None or not outcome.operation_id:
            return ""
        return self._call(lambda: api.summary(outcome.operation_id))

    def _report(self, outcome: lifecycle.Outcome) -> None:
        if outcome.exit_code:
            self._fail(f"tenant '{outcome.tenant_id}': {outcome.message}", outcome.exit_code)
        if outcome.status in ("interrupted", "waiting"):
            self._err.print(f"[yellow]{outcome.status}[/yellow]: {escape(outcome.message)}")
            raise typer.Exit(130)
        where = f" (operation {outcome.operation_id})" if outcome.operation_id else ""
        self._err.print(f"tenant '{outcome.tenant_id}': {outcome.status}{where}", highlight=False)

    def _fail(self, text: str, code: int) -> NoReturn:
        self._err.print(f"[red]error:[/red] {escape(text)}", highlight=False, soft_wrap=True)
        raise typer.Exit(code)


class _Commands(ProgressCommands):
    def create(
        self,
        file: Annotated[Path, typer.Option("-f", "--file", help="The new tenant's YAML file.")],
        platform: Annotated[
            Path | None, typer.Option("--platform", help="platform.yaml (default: beside FILE).")
        ] = None,
        lock_timeout: LockTimeout = 30.0,
        out_dir: Annotated[
            Path, typer.Option("--out", help="Render mode output folder (`OUT/<tenant-id>/...`).")
        ] = Path("out"),
    ) -> None:
        """Onboard one new tenant, showing each step as it runs.

        Refuses a tenant that is already recorded (exit 4): `tenantctl apply` changes it.

        Example: tenantctl create -f tenant-configs/corner-cafe.yaml
        """
        config, sources = self._call(lambda: service.inputs.load([file], platform))
        if len(sources) != 1:
            self._fail(f"{file}: create takes one tenant file, found {len(sources)}", 2)
        source = sources[0]
        if api := self._remote():  # checked here as locally; the server checks it again
            body = {"content": file.read_bytes(), "headers": {"Content-Type": "application/yaml"}}
            self._follow(api, "create", "POST", "/v1/tenants", **body)
            return
        session = self._call(
            lambda: lifecycle.open_session(lock_wait=lock_timeout, out_dir=out_dir)
        )
        steps = self._call(lambda: lifecycle.step_names(session, lifecycle.CREATE, config))
        self._with_progress(
            session,
            StepProgress(source.tenant.id, "create", steps),
            lambda: lifecycle.create(session, source, config),
        )

    def suspend(
        self,
        tenant: Annotated[str, typer.Argument(help="Tenant id.")],
        yes: Yes = False,
        lock_timeout: LockTimeout = 30.0,
        out_dir: OutDirOpt = None,
    ) -> None:
        """Take a tenant's traffic off, data untouched: ingress denied, DNS on the
        suspended target, app role NOLOGIN. `apply` never resumes it; `resume` does.

        Example: tenantctl suspend tenant-100 --yes
        """
        if not yes and sys.stdin.isatty():
            typer.confirm(f"suspend tenant '{tenant}' (its traffic stops)?", abort=True)
        self._recorded(tenant, lifecycle.SUSPEND, lock_timeout, out_dir)

    def resume(
        self,
        tenant: Annotated[str, typer.Argument(help="Tenant id.")],
        lock_timeout: LockTimeout = 30.0,
        out_dir: OutDirOpt = None,
    ) -> None:
        """Bring a suspended tenant back: login, network, DNS, health checks, active.

        Example: tenantctl resume tenant-100
        """
        self._recorded(tenant, lifecycle.RESUME, lock_timeout, out_dir)

    def _recorded(self, tenant: str, kind: str, lock_timeout: float, out_dir: Path | None) -> None:
        path = f"/v1/tenants/{tenant}/{kind}"
        if self._remotely(kind, "POST", path, out_dir=out_dir) is not None:
            return
        session = self._call(lambda: lifecycle.open_session(lock_wait=lock_timeout))
        run = lifecycle.suspend if kind == lifecycle.SUSPEND else lifecycle.resume
        self._run_recorded(session, tenant, kind, lambda: run(session, tenant, out_dir))
