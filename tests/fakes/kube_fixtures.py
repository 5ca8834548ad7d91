"""pytest fixtures for the fake kube-apiserver (registered in tests/conftest.py).

`kube_apiserver` starts two independent fake clusters for one test: the shared cluster
(context `fake`, current) and a premium tenant's dedicated cluster (context `fake-premium`,
also reachable as `.premium`). Both contexts live in one kubeconfig file with token auth.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.kube_apiserver import FakeKubeApiServer, RecordedRequest, Store, write_kubeconfig
from tests.fakes.kube_apiserver.faults import Faults

CONTEXT = "fake"
PREMIUM_CONTEXT = "fake-premium"


@dataclass
class FakeCluster:
    """One fake cluster as a test sees it: server, store, recorded requests, kubeconfig."""

    server: FakeKubeApiServer
    kubeconfig: Path
    context: str
    premium: FakeCluster | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return self.server.url

    @property
    def token(self) -> str:
        """The bearer token the server accepts."""
        return self.server.token

    @property
    def store(self) -> Store:
        """Direct access to the objects (read them, or edit them as another manager)."""
        return self.server.store

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far."""
        return self.server.requests

    def writes(self) -> list[RecordedRequest]:
        """Recorded non-GET requests."""
        return self.server.writes()

    def reset_requests(self) -> None:
        """Forget the recorded requests."""
        self.server.reset_requests()

    @property
    def faults(self) -> Faults:
        """Injected failures: `.fail(503, times=2, retry_after=1)`, `.deny("create", "secrets")`."""
        return self.server.faults

    def api_client(self) -> Any:
        """A configured `kubernetes.client.ApiClient` for this cluster."""
        return self.server.api_client()

    def kubectl_env(self) -> dict[str, str]:
        """Environment for running kubectl against this cluster (private discovery cache)."""
        cache = self.kubeconfig.parent / "kube-cache"
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "KUBECACHEDIR": str(cache)}

    def kubectl_args(self) -> list[str]:
        """`--kubeconfig X --context Y` for a kubectl command line."""
        return ["--kubeconfig", str(self.kubeconfig), "--context", self.context]


def start_clusters(directory: Path, *, termination_delay: float | None = 0.2) -> FakeCluster:
    """Start the shared and premium fake clusters and write their kubeconfig in `directory`."""
    main = FakeKubeApiServer(termination_delay=termination_delay).start()
    premium_token = "fake-premium-token"  # noqa: S105 - loopback test credential
    premium = FakeKubeApiServer(token=premium_token, termination_delay=termination_delay)
    premium.start()
    path = write_kubeconfig(
        directory / "kubeconfig", {CONTEXT: main, PREMIUM_CONTEXT: premium}, current=CONTEXT
    )
    premium_cluster = FakeCluster(premium, path, PREMIUM_CONTEXT)
    return FakeCluster(main, path, CONTEXT, premium=premium_cluster)


@pytest.fixture
def kube_http(kube_apiserver: FakeCluster) -> Iterator[httpx.Client]:
    """A raw httpx client for the shared fake cluster (bearer token set), for wire tests."""
    headers = {"Authorization": f"Bearer {kube_apiserver.token}"}
    with httpx.Client(base_url=kube_apiserver.url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def kube_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCluster]:
    """Two fresh fake clusters (`fake` and `.premium` / `fake-premium`) for one test."""
    cluster = start_clusters(tmp_path_factory.mktemp("kube"))
    try:
        yield cluster
    finally:
        cluster.server.stop()
        if cluster.premium is not None:
            cluster.premium.server.stop()
