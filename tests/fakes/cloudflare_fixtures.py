"""Pytest fixtures for the Cloudflare emulator and the live DNS driver pointed at it.

Registered through `pytest_plugins` in `tests/conftest.py`. The driver reaches the
emulator through the official SDK over `httpx.WSGITransport` (fast, in-process) or, with
`cloudflare_url`, over a loopback HTTP server (real sockets, timeouts, slow responses).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from controlplane.drivers.cloudflare import TOKEN_ENV, CloudflareDns
from tests.fakes.cloudflare_api import PREFIX, CloudflareEmulator, serve

ZONE = "tenants.example.com"
TOKEN = "test-token"  # noqa: S105 - the emulator's made-up token
SDK_BASE_URL = f"http://cloudflare.test{PREFIX}"


@pytest.fixture
def cloudflare_token(monkeypatch: pytest.MonkeyPatch) -> str:
    """The API token the driver reads from the environment."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return TOKEN


@pytest.fixture
def cloudflare_emulator() -> CloudflareEmulator:
    """A fresh emulated account with no zones."""
    return CloudflareEmulator(tokens=[TOKEN])


@pytest.fixture
def cloudflare_zone(cloudflare_emulator: CloudflareEmulator) -> str:
    """Id of the platform zone (`tenants.example.com`, the default base domain)."""
    return cloudflare_emulator.add_zone(ZONE)


@pytest.fixture
def cloudflare_sleeps() -> list[float]:
    """The waits `cloudflare_dns` asked for between retries (none is actually slept)."""
    return []


@pytest.fixture
def cloudflare_dns(
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
    cloudflare_token: str,
    cloudflare_sleeps: list[float],
) -> CloudflareDns:
    """The live driver, through the official SDK, against the emulator (in-process).

    Its retry sleep only records the wait in `cloudflare_sleeps`, so no test waits.
    """
    del cloudflare_token
    return CloudflareDns(
        cloudflare_zone,
        base_url=SDK_BASE_URL,
        transport=httpx.WSGITransport(app=cloudflare_emulator),
        sleep=cloudflare_sleeps.append,
    )


@pytest.fixture
def cloudflare_url(cloudflare_emulator: CloudflareEmulator) -> Iterator[str]:
    """SDK base URL of the emulator served on a loopback port."""
    with serve(cloudflare_emulator) as url:
        yield url
