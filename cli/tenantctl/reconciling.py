"""`tenantctl reconcile [--watch] DIR | --source kubernetes`, `pause-reconcile TENANT`,
`resume-reconcile TENANT`.

Registered on the main app by `register` (argument parsing, output and signals only; the
passes are in `controlplane.service.reconciling`, the Tenant objects' in
`controlplane.service.crd_source`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Annotated, NamedTuple, Protocol, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from controlplane import service
from controlplane.service import crd_source, reconciling
from tenantctl.output import Format

__all__ = ["register"]

T = TypeVar("T")
DRIFT_LEFT = 7  # like `drift`: something is still not as desired


class Run(Protocol):
    """The main app's error mapping: call the service, exit with the error's code."""

    def __call__(self, func: Callable[[], T]) -> T: ...


class EmitOutcomes(Protocol):
    """The main app's per-tenant result table (`apply`'s)."""

    def __call__(
        self, outcomes: list[service.operations.ApplyOutcome], output: Format, *, title: str
    ) -> None: ...


Tenant = Annotated[str, typer.Argument(help="Tenant id.")]


class Source(StrEnum):
    """Where desired tenants come from."""

    FILES = "files"
    KUBERNETES = "kubernetes"


def register(app: typer.Typer, *, run: Run, emit_outcomes: EmitOutcomes, err: Console) -> None:
    """Add `reconcile`, `pause-reconcile` and `resume-reconcile` to `app`."""

    @app.command()
    def reconcile(
        paths: Annotated[
            list[Path] | None,
            typer.Argument(help="Tenant directories or files (a Git checkout)."),
        ] = None,
        platform: Annotated[
            Path | None,
            typer.Option("--platform", help="platform.yaml (default: the one beside DIR)."),
        ] = None,
        watch: Annotated[
            bool, typer.Option("--watch", help="Repeat every --interval seconds until stopped.")
        ] = False,
        interval: Annotated[
            float, typer.Option(min=1, help="Seconds between passes with --watch.")
        ] = 60.0,
        parallel: Annotated[int, typer.Option(min=1, max=64, help="Tenants at once.")] = 4,
        output: Annotated[Format, typer.Option("-o", "--output", help="table, json or yaml.")] = (
            Format.TABLE
        ),
        out_dir: Annotated[Path, typer.Option("--out", help="Render mode output folder.")] = Path(
            "out"
        ),
        origin: Annotated[
            Source,
            typer.Option(
                "--source", help="files (DIR) or kubernetes (Tenant objects, `tenantctl crd`)."
            ),
        ] = Source.FILES,
        cluster: Annotated[
            str, typer.Option(help="With --source kubernetes: the platform.clusters entry.")
        ] = "shared",
    ) -> None:
        """Converge every tenant of DIR and heal drift; with --watch, keep doing it.

        Each pass compares desired (the files, re-read every pass), recorded and live
        state in bulk (one snapshot per backend), applies what changed, repairs drift
        (audited as `reconcile.repaired` with what it fixed) and reports what it could not
        fix: failed tenants (left alone with a doubling backoff kept in the state store, so
        a restart respects it), and observe-only tenants whose drift is reported, never
        corrected (`lifecycle.management: observe`, `tenantctl pause-reconcile`). Tenants
        whose file is gone are marked pending-deletion, never deleted (`apply --prune`
        does that). SIGTERM or Ctrl-C stops after the running steps finish.

        One pass exits 0 when everything converged, 7 when drift or a backoff is left,
        else the highest code of the failed tenants. --watch exits 0 when stopped.

        With `--source kubernetes` the desired tenants are the Tenant objects on
        `--cluster` (Argo CD or Flux sync tenant files as objects): the same flows run,
        each object's status gets conditions Ready/Reconciling/Drifted/Failed, its step
        and observedGeneration, and deleting an object runs the delete flow (export
        first) through a finalizer. --watch follows the objects' watch and makes a full
        pass every --interval seconds (docs/kubernetes.md).

        Example: tenantctl reconcile --watch --interval 30 tenant-configs/

        Example: tenantctl reconcile --source kubernetes --watch --platform platform.yaml
        """
        if origin is Source.KUBERNETES:
            objects = _Objects(paths or [], platform, cluster, out_dir, watch, interval)
            _tenant_objects(
                run, objects, partial(emit_outcomes, output=output, title="Tenant objects"), err
            )
            return
        if not paths:
            msg = "give the tenant directories to reconcile (or --source kubernetes)"
            raise typer.BadParameter(msg, param_hint="PATHS")
        session = run(lambda: service.open_session(out_dir=out_dir))
        source = reconciling.Directory(tuple(paths), platform)

        def show(report: reconciling.PassReport) -> None:
            if report.error:
                err.print(f"[red]pass failed:[/red] {escape(report.error)}", highlight=False)
                return
            emit_outcomes(report.outcomes, output, title=f"reconcile {report.at:%H:%M:%S}")
            for outcome in report.unfixed:
                err.print(
                    f"[yellow]not fixed[/yellow]: {escape(outcome.tenant_id)} "
                    f"({outcome.action}) {escape(outcome.message)}",
                    highlight=False,
                )

        if not watch:
            report = run(lambda: reconciling.reconcile(session, source, parallel=parallel))
            show(report)
            raise typer.Exit(_exit_code(report))
        pacing = reconciling.Pacing(interval)
        with _stoppable(session, pacing.stop, err):
            reconciling.watch(session, source, pacing, show)
        err.print("reconciler stopped")

    @app.command("pause-reconcile")
    def pause_reconcile(
        tenant: Tenant,
        reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    ) -> None:
        """Observe only: report the tenant's drift, never correct it (maintenance window).

        Holds for `reconcile`, `reconcile --watch` and `apply --reconcile` until
        `tenantctl resume-reconcile`; recorded in the state store and audited.

        Example: tenantctl pause-reconcile tenant-100 --reason "DB maintenance"
        """
        session = run(service.open_session)
        run(lambda: reconciling.pause(session, tenant, reason=reason))
        err.print(f"tenant '{tenant}': reconcile paused (observe only)", highlight=False)

    @app.command("resume-reconcile")
    def resume_reconcile(tenant: Tenant) -> None:
        """Reconcile a paused tenant again: the next pass corrects its drift.

        Example: tenantctl resume-reconcile tenant-100
        """
        session = run(service.open_session)
        run(lambda: reconciling.unpause(session, tenant))
        err.print(f"tenant '{tenant}': reconcile resumed", highlight=False)


class _Objects(NamedTuple):
    paths: list[Path]
    platform: Path | None
    cluster: str
    out_dir: Path
    watch: bool
    interval: float


def _tenant_objects(
    run: Run,
    args: _Objects,
    show: Callable[[list[service.operations.ApplyOutcome]], None],
    err: Console,
) -> None:
    """One pass over the Tenant objects (a row each), or follow them until stopped."""
    if args.paths:
        msg = "--source kubernetes reads Tenant objects: give no DIR"
        raise typer.BadParameter(msg, param_hint="PATHS")
    config, _ = run(lambda: service.inputs.load([], args.platform))
    session = run(lambda: service.open_session(out_dir=args.out_dir))
    source = run(lambda: crd_source.open_source(session, config, cluster=args.cluster))
    if not args.watch:
        outcomes, _ = run(source.reconcile_all)
        show(outcomes)
        raise typer.Exit(max((o.exit_code for o in outcomes), default=0))
    stop = threading.Event()
    with _stoppable(session, stop, err):
        err.print(f"watching Tenant objects on cluster '{escape(args.cluster)}'", highlight=False)
        source.run(stop, resync=args.interval)
    err.print("reconciler stopped")


def _exit_code(report: reconciling.PassReport) -> int:
    failed = [o.exit_code for o in report.unfixed if o.exit_code]
    if failed:
        return max(failed)
    return DRIFT_LEFT if report.unfixed else 0


@contextmanager
def _stoppable(session: service.Session, stop: threading.Event, err: Console) -> Iterator[None]:
    """SIGTERM or the first Ctrl-C: finish the running steps, then stop; a second aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(_signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        session.cancel.set()
        err.print("[yellow]stopping[/yellow]: finishing the running steps")

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
