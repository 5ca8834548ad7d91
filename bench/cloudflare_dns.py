"""Benchmark the `dns` driver and the shared request budget.

- apply: 200 tenants (every fourth with a custom hostname) through the official SDK
  against the Cloudflare emulator (in-process), then the same again. The re-run must
  write nothing, and its cost is the point: requests per tenant when nothing changes.
- budget: token takes per second from the Postgres bucket (embedded pgserver), by 4
  threads on 2 engines (two "worker processes"), with a limit high enough never to wait.

Usage: .venv/bin/python bench/cloudflare_dns.py [--tenants 200]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pgserver

from controlplane.drivers.cloudflare import TOKEN_ENV, CloudflareDns
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.resources import dns as dns_resources
from controlplane.state import budgets, database

# The emulator lives with the tests: put the repository root on the import path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
fake = importlib.import_module("tests.fakes.cloudflare_api")

TOKEN = "bench-token"  # noqa: S105 - the emulator's made-up token


def _tenants(count: int) -> list[Tenant]:
    return [
        Tenant.model_validate(
            {
                "id": f"t{i:04d}",
                "name": f"T{i}",
                "tier": "standard",
                "region": "us-east-1",
                "domains": {"custom": [f"shop.t{i:04d}.example.org"] if i % 4 == 0 else []},
            }
        )
        for i in range(count)
    ]


def _apply_twice(count: int) -> dict[str, object]:
    os.environ[TOKEN_ENV] = TOKEN
    emulator = fake.CloudflareEmulator(tokens=[TOKEN], rate_limit=10**9)
    zone = emulator.add_zone("tenants.example.com")
    driver = CloudflareDns(
        zone, base_url=f"http://cf.bench{fake.PREFIX}", transport=httpx.WSGITransport(app=emulator)
    )
    wanted = [dns_resources.desired(t, PlatformConfig()) for t in _tenants(count)]
    start = time.perf_counter()
    for want in wanted:
        driver.apply(want)
    first_s = time.perf_counter() - start
    first_calls = len(emulator.calls)
    start = time.perf_counter()
    for want in wanted:
        driver.apply(want)
    noop_s = time.perf_counter() - start
    noop = emulator.calls[first_calls:]
    return {
        "tenants": count,
        "apply_s": round(first_s, 3),
        "noop_s": round(noop_s, 3),
        "requests_per_tenant": round(first_calls / count, 2),
        "noop_requests_per_tenant": round(len(noop) / count, 2),
        "noop_writes": sum(1 for c in noop if c.is_write),
        "records": len(emulator.records(zone)),
    }


def _budget_rate(takes: int = 2000) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-dns-") as tmp:
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        url = str(server.get_uri())
        engines = [database.connect(url), database.connect(url)]
        buckets = [
            budgets.PostgresRequestBudget(engines[i % 2], "bench", limit=10**9, window=1.0)
            for i in range(4)
        ]
        threads = [
            threading.Thread(target=lambda b=b: [b.acquire() for _ in range(takes // 4)])
            for b in buckets
        ]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        for engine in engines:
            engine.dispose()
        server.cleanup()
    return {"budget_takes": takes, "budget_takes_per_s": round(takes / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=200)
    args = parser.parse_args()
    result: dict[str, object] = {"bench": "cloudflare_dns"}
    result.update(_apply_twice(args.tenants))
    result.update(_budget_rate())
    result.update(target_noop_writes_max=0, target_noop_requests_per_tenant_max=1.25)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
