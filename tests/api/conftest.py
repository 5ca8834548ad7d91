"""An API over the per-test database: a TestClient, tokens of each kind, recorded tenants."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from fastapi.testclient import TestClient

from controlplane import api, service
from controlplane.service import lifecycle, tokens
from controlplane.steps import records
from controlplane.steps.records import spec_fingerprint
from tests.conftest import EXAMPLES

T = TypeVar("T")


@dataclass(frozen=True)
class Api:
    """A running app, its session and one token per kind."""

    client: TestClient
    session: service.Session
    admin: str
    operator: str
    viewer: str

    def as_(self, token: str) -> dict[str, str]:
        """Headers authenticating as `token`."""
        return {"Authorization": f"Bearer {token}"}

    def record(self, file: str, status: str = "active") -> str:
        """`record` a tenant, then wait until this replica's resolver index shows it
        (the index follows the store by NOTIFY, asynchronously)."""
        tenant_id = record(self.session, file, status)
        index = self.client.app.state.services.resolver.index  # type: ignore[attr-defined]

        def shown() -> bool | None:
            decision = index.by_id(tenant_id)
            return (decision.tenant is not None and decision.tenant.status == status) or None

        eventually(shown, within=5)
        return tenant_id


def record(session: service.Session, file: str, status: str = "active") -> str:
    """Record an example tenant as `apply` would (spec, hostnames), with `status`."""
    platform, sources = service.inputs.load([EXAMPLES / file])
    tenant = sources[0].tenant
    session.store.record_tenant(
        tenant.model_dump(mode="json"),
        fingerprint=spec_fingerprint(tenant, platform),
        source_file=str(EXAMPLES / file),
        hosts=records.desired_hosts(tenant, platform),
    )
    session.store.set_status(tenant.id, status)
    return tenant.id


def mint(session: service.Session, name: str, **scope: object) -> str:
    """A new token (platform with `role=`, tenant with `tenant_id=`)."""
    token, _row = tokens.create(session, name, ttl=timedelta(hours=1), **scope)  # type: ignore[arg-type]
    return token


@pytest.fixture
def platform_file() -> Path:
    return EXAMPLES / "platform.yaml"


@pytest.fixture
def served(cli_env: dict[str, str], platform_file: Path, tmp_path: Path) -> Iterator[Api]:
    """The API on the per-test database, its lifespan running (resolver index loaded)."""
    config, _ = service.inputs.load([], platform_file)
    session = lifecycle.open_session(actor="api-test", lock_wait=5.0, out_dir=tmp_path / "out")
    app = api.create_app(session, config, audit_every=0.2)
    with TestClient(app) as client:
        yield Api(
            client,
            session,
            admin=mint(session, "admin", role="admin"),
            operator=mint(session, "ops", role="operator"),
            viewer=mint(session, "watcher", role="viewer"),
        )


def eventually(check: Callable[[], T | None], *, within: float) -> T:
    """Poll `check` until it returns something (not None) or `within` seconds have passed."""
    deadline = time.monotonic() + within
    pause = threading.Event()
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            msg = f"not seen within {within} s"
            raise AssertionError(msg)
        pause.wait(0.01)  # a poll interval, not an assertion about timing


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_process(env: dict[str, str], workdir: Path, name: str) -> Iterator[httpx.Client]:
    """A `tenantctl serve` process on a free port, ready (its log in `workdir/NAME.log`)."""
    port = _free_port()
    log = (workdir / f"{name}.log").open("w")
    command = [
        sys.executable, "-m", "tenantctl.main", "serve", "--port", str(port),
        "--platform", str(EXAMPLES / "platform.yaml"), "--out", str(workdir / "out"),
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        eventually(lambda: _ready(client, process), within=60)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=60)
        log.close()


def _ready(client: httpx.Client, process: subprocess.Popen[bytes]) -> bool | None:
    assert process.poll() is None, "serve exited"
    try:
        return client.get("/readyz").status_code == 200 or None
    except httpx.TransportError:
        return None
