"""The API under `tenantctl serve --queue`: mutations are queued for the workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from controlplane import api, service
from controlplane.service import lifecycle
from tests.api.conftest import mint
from tests.conftest import EXAMPLES


@pytest.fixture
def queueing(cli_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    """A queueing API (no background threads) and an operator token."""
    config, _ = service.inputs.load([], EXAMPLES / "platform.yaml")
    session = lifecycle.open_session(actor="api-test", out_dir=tmp_path / "out", queue=True)
    with TestClient(api.create_app(session, config, audit_every=0.2)) as client:
        yield client, mint(session, "ops", role="operator")


@pytest.mark.slow
def test_a_created_tenant_is_queued_then_run_by_a_worker_as_the_caller(
    queueing: tuple[TestClient, str],
) -> None:
    client, token = queueing
    auth = {"Authorization": f"Bearer {token}"}
    response = client.post(
        "/v1/tenants",
        content=(EXAMPLES / "bluebird-books.yaml").read_bytes(),
        headers={**auth, "Content-Type": "application/yaml"},
    )
    assert response.status_code == 202, response.text
    url = response.headers["Location"]
    queued = client.get(url, headers=auth).json()
    assert (queued["status"], queued["steps"]) == ("queued", [])

    worker = service.open_session(actor="worker")
    outcome = service.queueing.perform(worker, queued["id"])

    assert outcome.status == "succeeded"
    assert client.get(url, headers=auth).json()["status"] == "succeeded"
    assert client.get("/v1/tenants/bluebird", headers=auth).json()["status"] == "active"
    entries = service.queries.audit(worker, "bluebird")
    actors = {e["actor"] for e in entries if e["action"].startswith(("operation.", "step."))}
    assert actors == {e["actor"] for e in entries if e["action"] == "api.tenant.create"}
