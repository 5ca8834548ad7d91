"""Queue workers: `tenantctl worker` runs the operations queued in the state store.

Each worker process is a procrastinate worker on the `operations` queue; run as many
processes or replicas as wanted. A job runs one operation through
`service.queueing.perform` (the tenant's lease, fenced writes), in a thread per job
(`concurrency` at once). Workers beat a heartbeat into the state store, and every worker
also looks for jobs of workers that stopped beating (killed, OOM, a lost node) every
third of `stalled_after` and puts them back in the queue, so a dead worker's operation
goes on elsewhere with no one stepping in; the new runner takes the tenant's lease over
once the dead holder's expires (at once on the same host).

SIGTERM or SIGINT stops gracefully: no new job is taken, running operations stop at
their next step boundary and are queued again for another worker.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import procrastinate
from procrastinate import exceptions

from controlplane import service

__all__ = ["Options", "run"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    """How one worker process runs."""

    name: str = "worker"
    # Jobs (operations of different tenants) run at once, each in its own thread.
    concurrency: int = 1
    # A worker without a heartbeat for this long is dead; its jobs go back in the queue.
    stalled_after: float = 30.0


def run(session: service.Session, options: Options) -> None:
    """Work the queue until SIGTERM/SIGINT (the session's holder holds the leases).

    Raises:
        ControlPlaneError: (exit 5) the state store went away.
    """
    with service.queueing.translated():
        asyncio.run(_work(session, options))


async def _work(session: service.Session, options: Options) -> None:
    app = service.queueing.worker_app(session)

    @app.task(name=service.queueing.TASK, queue=service.queueing.QUEUE)
    def run_operation(operation_id: str) -> str:
        outcome = service.queueing.perform(session, operation_id)
        log.info(
            "%s: operation %s %s%s",
            outcome.tenant_id,
            operation_id,
            outcome.status,
            f" — {outcome.message}" if outcome.message else "",
        )
        return outcome.status

    async with app.open_async():
        worker = asyncio.create_task(
            app.run_worker_async(
                queues=[service.queueing.QUEUE],
                name=options.name,
                concurrency=options.concurrency,
                install_signal_handlers=False,
                update_heartbeat_interval=options.stalled_after / 3,
                stalled_worker_timeout=options.stalled_after,
                delete_jobs="successful",
            )
        )
        recovery = asyncio.create_task(_recover(app, options.stalled_after))
        loop = asyncio.get_running_loop()
        # A job whose end could not be recorded (the store went away) is recovered later;
        # its unretrieved exception is no news for the log.
        loop.set_exception_handler(lambda _loop, context: log.debug("%s", context["message"]))

        def stop() -> None:
            session.cancel.set()  # running operations stop at the next step boundary
            worker.cancel()  # procrastinate waits for the running jobs, then stops

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop)
        try:
            await worker
        except asyncio.CancelledError:
            log.info("worker %s stopped", options.name)
        finally:
            recovery.cancel()


async def _recover(app: procrastinate.App, stalled_after: float) -> None:
    """Put dead workers' jobs back in the queue, now and every third of `stalled_after`."""
    while True:
        try:
            await service.queueing.recover_stalled(app, stalled_after=stalled_after)
        except exceptions.ConnectorException as exc:  # the store is down: try again later
            log.warning("looking for stalled jobs failed: %s", exc.__cause__ or exc)
        await asyncio.sleep(stalled_after / 3)
