"""A state-store outage: /readyz says so, the resolver keeps answering from memory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from tests.api.conftest import Api, eventually

HOST = "bluebird.tenants.example.com"


@contextmanager
def _store_down(postgres_url: str, database_url: str) -> Iterator[None]:
    """Refuse new connections to the test database and end the open ones."""
    name = database_url.partition("?")[0].rsplit("/", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_outage_is_not_ready_but_resolving_goes_on(
    served: Api, postgres_url: str, database_url: str
) -> None:
    served.record("bluebird-books.yaml")
    auth = served.as_(served.viewer)
    assert served.client.get("/v1/resolve", params={"host": HOST}, headers=auth).status_code == 200
    with _store_down(postgres_url, database_url):
        ready = served.client.get("/readyz")
        assert ready.status_code == 503
        assert "unreachable" in ready.json()["checks"]["state_store"]
        routed = served.client.get("/v1/resolve", params={"host": HOST}, headers=auth)
        assert (routed.status_code, routed.json()["tenant_id"]) == (200, "bluebird")
        listing = served.client.get("/v1/tenants", headers=auth)
        assert (listing.status_code, listing.json()["exit_code"]) == (502, 5)
        assert served.client.get("/metrics").status_code == 200
    eventually(lambda: served.client.get("/readyz").status_code == 200 or None, within=30)
    # The listener is back too: a tenant recorded now reaches the index.
    assert served.record("corner-cafe.yaml") == "corner-cafe"
