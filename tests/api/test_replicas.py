"""Two `tenantctl serve` processes on one state store: each keeps its index current."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import httpx
import pytest

from controlplane import service
from tests.api.conftest import eventually, mint, serve_process
from tests.conftest import EXAMPLES

HOST = "bluebird.tenants.example.com"
FINAL = {"succeeded", "failed", "interrupted", "waiting"}


def _resolves(client: httpx.Client, token: str, want: int) -> bool | None:
    response = client.get("/v1/resolve", params={"host": HOST}, headers=_auth(token))
    return response.status_code == want or None


def _known(client: httpx.Client, token: str) -> bool | None:
    """Recorded, whether active (200) or still provisioning (503)."""
    return _resolves(client, token, 503) or _resolves(client, token, 200)


def _finished(client: httpx.Client, url: str, token: str) -> dict[str, object] | None:
    found: dict[str, object] = client.get(url, headers=_auth(token)).json()
    return found if found["status"] in FINAL else None


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.slow
def test_a_tenant_created_on_one_replica_resolves_on_both_and_suspension_too(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    session = service.open_session(actor="replica-test")
    operator, viewer = mint(session, "ci", role="operator"), mint(session, "gw", role="viewer")
    with (
        serve_process(cli_env, tmp_path, "a") as first,
        serve_process(cli_env, tmp_path, "b") as second,
    ):
        assert _resolves(second, viewer, 404)
        created = first.post(
            "/v1/tenants",
            content=(EXAMPLES / "bluebird-books.yaml").read_bytes(),
            headers={**_auth(operator), "Content-Type": "application/yaml"},
        )
        assert created.status_code == 202, created.text
        # Recorded by the first step: known on both replicas (503 until active) within 1 s.
        for replica in (second, first):
            eventually(partial(_known, replica, viewer), within=1)
        url = created.json()["operation_url"]
        operation = eventually(lambda: _finished(second, url, viewer), within=300)
        assert operation["status"] == "succeeded", operation
        for replica in (first, second):
            eventually(partial(_resolves, replica, viewer, 200), within=1)
        session.store.set_status("bluebird", "suspended")
        for replica in (first, second):
            eventually(partial(_resolves, replica, viewer, 403), within=1)
    lines = [
        json.loads(x) for x in (tmp_path / "b.log").read_text().splitlines() if x.startswith("{")
    ]
    outcomes = {line["outcome"] for line in lines if line["host"] == HOST}
    assert {"unknown", "routed", "suspended"} <= outcomes
