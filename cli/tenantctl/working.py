"""`tenantctl worker`: run the operations queued by `apply --async` and the API.

Registered on the main app by `register`; argument parsing and logging only, the worker
is `controlplane.worker`.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Annotated, Any

import typer

from controlplane import service, worker
from controlplane.service import StepEvent

__all__ = ["register"]

Runner = Callable[[Callable[[], Any]], Any]


def register(app: typer.Typer, run: Runner, progress: Callable[[StepEvent], None]) -> None:
    """Add `worker` to `app`; `run` maps service errors to exit codes."""

    @app.command(name="worker")
    def work(
        concurrency: Annotated[
            int, typer.Option(min=1, max=64, help="Operations (of different tenants) at once.")
        ] = 1,
        name: Annotated[
            str | None, typer.Option(help="Name in logs (default: worker@HOST).")
        ] = None,
        stalled_after: Annotated[
            float,
            typer.Option(
                min=1.0,
                help="Seconds without a heartbeat after which a worker counts as dead and "
                "its operations are queued again.",
            ),
        ] = 30.0,
        lock_timeout: Annotated[
            float,
            typer.Option(
                min=0,
                help="Seconds to wait for a tenant held by another process (then the "
                "operation is queued again) and for terraform's plugin cache.",
            ),
        ] = 30.0,
    ) -> None:
        """Run queued operations until SIGTERM or Ctrl-C (any number of workers at once).

        Takes operations that `tenantctl apply --async` and the HTTP API queued in the
        state store (TENANTCTL_DATABASE_URL, or the embedded one) and runs them under
        each tenant's lease: one operation per tenant at a time, many tenants across the
        workers. A step waiting for its next attempt is queued again for that time; a
        dead worker's operations are queued again once it missed its heartbeats for
        --stalled-after seconds. SIGTERM stops gracefully: running operations stop at
        the next step boundary and go back to the queue.

        Example: tenantctl worker --concurrency 4
        """
        session = run(lambda: service.open_session(lock_wait=lock_timeout, on_event=progress))
        _log_like_the_cli()
        options = worker.Options(
            name=name or f"worker@{socket.gethostname()}",
            concurrency=concurrency,
            stalled_after=stalled_after,
        )
        run(lambda: worker.run(session, options))


def _log_like_the_cli() -> None:
    """A line per operation; the queue library's own warnings through the same handler
    (one line each, tracebacks only with --debug), not Python's bare fallback."""
    ours = logging.getLogger("controlplane")
    logging.getLogger("controlplane.worker").setLevel(logging.INFO)
    for name in ("procrastinate", "psycopg.pool"):
        library = logging.getLogger(name)
        library.handlers = list(ours.handlers)
        library.setLevel(min(ours.level, logging.WARNING))
        library.propagate = False
