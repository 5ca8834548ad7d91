"""The operation queue in one process: queueing, what a job runs, rescheduling, recovery.

Real Postgres (procrastinate's schema migrated in), real steps in render mode; worker
processes are in test_workers.py.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg.rows import dict_row
from typer.testing import CliRunner

from controlplane import service
from tenantctl.main import app
from tests.conftest import EXAMPLES
from tests.fakes.kube_fixtures import FakeCluster
from tests.lifecycle.conftest import write_tenant


@pytest.fixture
def configs(cli_env: dict[str, str], tmp_path: Path) -> Path:
    folder = tmp_path / "configs"
    folder.mkdir()
    shutil.copy(EXAMPLES / "platform.yaml", folder / "platform.yaml")
    return folder


@pytest.fixture
def submitter(cli_env: dict[str, str]) -> Iterator[service.Session]:
    session = service.open_session(actor="ci", queue=True)
    yield session
    session.store.engine.dispose()


def jobs(url: str) -> list[dict[str, Any]]:
    """procrastinate's job rows, oldest first."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT id, status, lock, queueing_lock, args, scheduled_at"
            " FROM procrastinate_jobs ORDER BY id"
        ).fetchall()


def queue(submitter: service.Session, folder: Path) -> list[service.operations.ApplyOutcome]:
    platform, sources = service.inputs.load([folder])
    return service.operations.apply(submitter, sources, platform)


def test_async_apply_records_one_queued_operation_and_job_per_tenant_idempotently(
    configs: Path, submitter: service.Session, cli_env: dict[str, str]
) -> None:
    for tenant_id in ("wq-a", "wq-b"):
        write_tenant(configs, tenant_id)
    first = queue(submitter, configs)
    assert [(o.tenant_id, o.action) for o in first] == [("wq-a", "queued"), ("wq-b", "queued")]
    again = queue(submitter, configs)
    assert [o.operation_id for o in again] == [o.operation_id for o in first]
    # Queued in parallel: one job per tenant, in either order.
    found = sorted(jobs(cli_env["TENANTCTL_DATABASE_URL"]), key=lambda j: str(j["lock"]))
    assert [(j["status"], j["lock"], j["queueing_lock"]) for j in found] == [
        ("todo", "wq-a", "wq-a"),
        ("todo", "wq-b", "wq-b"),
    ]
    assert [j["args"]["operation_id"] for j in found] == [o.operation_id for o in first]
    operation = service.listing.operation(submitter, first[0].operation_id)
    assert operation["status"] == "queued"


def test_another_operation_for_a_tenant_with_one_waiting_is_refused_and_nothing_recorded(
    configs: Path, submitter: service.Session, cli_env: dict[str, str]
) -> None:
    write_tenant(configs, "wq-c")
    (first,) = queue(submitter, configs)
    changed = (configs / "wq-c.yaml").read_text().replace("Lifecycle wq-c", "Renamed")
    (configs / "wq-c.yaml").write_text(changed)
    (refused,) = queue(submitter, configs)
    assert (refused.action, refused.exit_code) == ("failed", 4)
    assert "waiting in the queue already" in refused.message
    assert [o["id"] for o in submitter.store.operations_of("wq-c")] == [first.operation_id]
    assert len(jobs(cli_env["TENANTCTL_DATABASE_URL"])) == 1


def test_a_job_for_a_tenant_held_elsewhere_is_queued_again_not_waited_for(
    configs: Path, submitter: service.Session, cli_env: dict[str, str]
) -> None:
    write_tenant(configs, "wq-d")
    (queued,) = queue(submitter, configs)
    # Another host's live process holds the tenant (its lease has not expired).
    submitter.store.acquire("wq-d", "ci/elsewhere/1/abcd", wait=0)
    worker = service.open_session(actor="worker", lock_wait=0)
    taken = asyncio.run(_take(service.queueing.worker_app(worker)))
    before = datetime.now(UTC)
    outcome = service.queueing.perform(worker, queued.operation_id)
    assert outcome.status == "locked"
    todo = [j for j in jobs(cli_env["TENANTCTL_DATABASE_URL"]) if j["status"] == "todo"]
    assert [j["args"]["operation_id"] for j in todo] == [queued.operation_id]
    assert todo[0]["id"] != taken
    assert todo[0]["scheduled_at"] >= before + service.queueing.RETRY_LATER
    assert service.listing.operation(worker, queued.operation_id)["status"] == "queued"


async def _take(app: Any, *, die: bool = False) -> int:
    """Fetch the next job as a worker would (which then dies when `die`: no heartbeat
    for an hour); return the job's id."""
    async with app.open_async():
        worker = await app.job_manager.register_worker()
        job = await app.job_manager.fetch_job(queues=None, worker_id=worker)
        if die:
            await app.connector.execute_query_async(
                "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'"
                " WHERE id = %(id)s",
                id=worker,
            )
    return int(job.id)


def test_a_dead_workers_job_is_queued_again_or_given_up_to_a_newer_one(
    configs: Path, submitter: service.Session, cli_env: dict[str, str]
) -> None:
    url = cli_env["TENANTCTL_DATABASE_URL"]
    write_tenant(configs, "wq-e")
    queue(submitter, configs)
    app = service.queueing.worker_app(submitter)

    async def recover() -> list[int]:
        async with app.open_async():
            return await service.queueing.recover_stalled(app, stalled_after=30)

    job = asyncio.run(_take(app, die=True))
    assert asyncio.run(recover()) == [job]
    assert [j["status"] for j in jobs(url)] == ["todo"]
    # Taken by a worker that dies again; meanwhile a newer operation of the tenant is queued.
    job = asyncio.run(_take(app, die=True))
    changed = (configs / "wq-e.yaml").read_text().replace("Lifecycle wq-e", "Renamed")
    (configs / "wq-e.yaml").write_text(changed)
    (newer,) = queue(submitter, configs)
    assert newer.action == "queued"
    assert asyncio.run(recover()) == [job]
    given_up, waiting = jobs(url)
    assert (given_up["id"], given_up["status"]) == (job, "failed")
    assert (waiting["status"], waiting["args"]["operation_id"]) == ("todo", newer.operation_id)


@pytest.mark.slow
def test_a_worker_job_runs_the_queued_operation_as_its_submitter(
    configs: Path, submitter: service.Session
) -> None:
    write_tenant(configs, "wq-f")
    (queued,) = queue(submitter, configs)
    worker = service.open_session(actor="worker")
    outcome = service.queueing.perform(worker, queued.operation_id)
    assert (outcome.status, outcome.operation_id) == ("succeeded", queued.operation_id)
    assert service.queries.get(worker, "wq-f")["status"] == "active"
    entries = list(reversed(service.queries.audit(worker, "wq-f")))
    actions = [e["action"] for e in entries]
    assert actions[:2] == ["operation.queued", "operation.resumed"]
    assert actions[-1] == "operation.succeeded"
    assert {e["actor"] for e in entries} == {"ci"}  # who asked, though a worker ran it
    assert entries[1]["detail"]["holder"] == worker.holder
    # Done is done: the same job delivered twice changes nothing.
    assert service.queueing.perform(worker, queued.operation_id).status == "succeeded"
    assert len(service.queries.audit(worker, "wq-f")) == len(entries)


@pytest.mark.slow
def test_a_transient_failure_is_queued_again_for_its_next_attempt_not_slept_on(
    configs: Path, submitter: service.Session, cli_env: dict[str, str], kube_apiserver: FakeCluster
) -> None:
    platform_file = configs / "platform.yaml"
    document = yaml.safe_load(platform_file.read_text())
    document["platform"]["modes"]["kubernetes"] = "live"
    document["platform"]["clusters"] = {"shared": {"context": "fake"}}
    document["platform"]["kubernetes"] = {"kubeconfig": str(kube_apiserver.kubeconfig)}
    platform_file.write_text(yaml.safe_dump(document))
    write_tenant(configs, "wq-g")
    (queued,) = queue(submitter, configs)
    worker = service.open_session(actor="worker")
    taken = asyncio.run(_take(service.queueing.worker_app(worker)))
    # The cluster fails every request for a while and says to come back in 60 s (a 500:
    # urllib3 itself sleeps out a 429/503's Retry-After inside the client).
    kube_apiserver.faults.fail(500, times=None, retry_after=60)

    outcome = service.queueing.perform(worker, queued.operation_id)

    assert outcome.status == "waiting"
    step = service.queries.describe(worker, "wq-g")["steps"]
    waiting = [s for s in step if s["status"] == "waiting_retry"]
    assert [s["name"] for s in waiting] == ["compute"]
    due = waiting[0]["next_attempt_at"]
    assert due == outcome.retry_at
    assert due >= datetime.now(UTC) + timedelta(seconds=30)  # Retry-After kept: not yet slept
    todo = [j for j in jobs(cli_env["TENANTCTL_DATABASE_URL"]) if j["status"] == "todo"]
    assert [(j["args"]["operation_id"], j["scheduled_at"]) for j in todo] == [
        (queued.operation_id, due)
    ]
    assert todo[0]["id"] != taken


def test_a_worker_without_its_state_store_exits_5_and_shows_no_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TENANTCTL_DATABASE_URL", "postgresql://ops:hunter2@127.0.0.1:1/state")
    monkeypatch.setenv("TENANTCTL_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 5, result.output
    assert "cannot reach the state store" in result.output
    assert "hunter2" not in result.output


def test_a_job_whose_tenant_got_a_newer_operation_meanwhile_supersedes_its_own(
    configs: Path, submitter: service.Session, cli_env: dict[str, str]
) -> None:
    write_tenant(configs, "wq-h")
    (older,) = queue(submitter, configs)
    worker = service.open_session(actor="worker")
    asyncio.run(_take(service.queueing.worker_app(worker)))  # its job runs: no job waits
    changed = (configs / "wq-h.yaml").read_text().replace("Lifecycle wq-h", "Renamed")
    (configs / "wq-h.yaml").write_text(changed)
    (newer,) = queue(submitter, configs)
    assert newer.action == "queued"

    outcome = service.queueing.perform(worker, older.operation_id)

    assert outcome.status == "unchanged"
    assert service.listing.operation(worker, older.operation_id)["status"] == "superseded"
    assert service.listing.operation(worker, newer.operation_id)["status"] == "queued"
    todo = [j for j in jobs(cli_env["TENANTCTL_DATABASE_URL"]) if j["status"] == "todo"]
    assert [j["args"]["operation_id"] for j in todo] == [newer.operation_id]
