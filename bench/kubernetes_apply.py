"""Benchmark the Kubernetes part of onboarding: render 1,000 tenants, apply 100 twice.

- render: `rendering.tenant_files` for 1,000 tenants of every tier (in memory), then
  `tenantctl render`'s writer into a temporary folder twice (the second run must change
  no file).
- apply: the `compute`, `config` and `network` steps of 100 tenants against the fake
  kube-apiserver (tests/fakes) in live mode, then the same again: the second run must
  make zero write requests. It runs twice more: once inside a bulk snapshot (one
  labelled list per kind for all tenants) and once per tenant (one list per kind and
  tenant), to show what observing in bulk saves.

Prints one JSON object. Usage: .venv/bin/python bench/kubernetes_apply.py [--tenants 100]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# The fake kube-apiserver lives with the tests.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controlplane.drivers import kubernetes as kubernetes_driver  # noqa: E402
from controlplane.engine.steps import StepContext  # noqa: E402
from controlplane.models.platform import (  # noqa: E402
    BackendModes,
    ClusterConfig,
    DriverMode,
    KubernetesSettings,
    PlatformConfig,
)
from controlplane.models.tenants import Tenant  # noqa: E402
from controlplane.resources import rendering  # noqa: E402
from controlplane.service import rendering as service_rendering  # noqa: E402
from controlplane.steps import kubernetes as kubernetes_steps  # noqa: E402

TIERS = ("standard", "standard", "enterprise", "premium")


class _Source:
    """What `tenantctl render` reads from a loaded tenant file."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.file = f"{tenant.id}.yaml"


def _tenants(count: int) -> list[Tenant]:
    return [
        Tenant.model_validate(
            {
                "id": f"t{i:04d}",
                "name": f"Tenant {i}",
                "tier": TIERS[i % len(TIERS)],
                "region": "us-east-1",
                "features": {"ai_agents": i % 2 == 0},
                "integrations": {"payment": "adyen"},
            }
        )
        for i in range(count)
    ]


def _timed(func: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = func()
    return round(time.perf_counter() - start, 3), result


def bench_render(count: int) -> dict[str, Any]:
    """Render `count` tenants in memory, then write them twice."""
    platform = PlatformConfig()
    tenants = _tenants(count)
    seconds, files = _timed(lambda: [rendering.tenant_files(t, platform) for t in tenants])
    sources: Any = [_Source(t) for t in tenants]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        write_s, first = _timed(lambda: service_rendering.render(sources, platform, out))
        rewrite_s, second = _timed(lambda: service_rendering.render(sources, platform, out))
    return {
        "render_tenants": count,
        "render_s": seconds,
        "render_bytes": sum(len(text) for f in files for text in f.values()),
        "render_write_s": write_s,
        "render_files_written": len(first),
        "render_rewrite_s": rewrite_s,
        "render_rewrite_files_changed": len(second),
    }


def _platform() -> PlatformConfig:
    return PlatformConfig(
        clusters={"shared": ClusterConfig(context="fake"), "dedicated": ClusterConfig()},
        modes=BackendModes(kubernetes=DriverMode.LIVE),
        kubernetes=KubernetesSettings(),
    )


class _Passwords:
    def password(self, tenant_id: str, purpose: str = "db-app") -> str:
        return f"bench-{purpose}-{tenant_id}"


def _apply_all(backend: Any, platform: PlatformConfig, tenants: list[Tenant], workers: int) -> None:
    steps = kubernetes_steps.tenant_steps(backend, _Passwords())

    def one(tenant: Tenant) -> None:
        ctx = StepContext(tenant, platform, "bench")
        for step in steps:
            step.apply(ctx)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, tenants))


def bench_apply(count: int, workers: int) -> dict[str, Any]:
    """Apply `count` tenants to the fake clusters, then re-apply (bulk and per tenant)."""
    fixtures = importlib.import_module("tests.fakes.kube_fixtures")
    platform = _platform()
    tenants = _tenants(count)
    premium = {t.id: "dedicated" for t in tenants if t.tier.value == "premium"}
    platform = platform.model_copy(
        update={"kubernetes": KubernetesSettings(dedicated_clusters=premium)}
    )
    with tempfile.TemporaryDirectory() as folder:
        clusters = fixtures.start_clusters(Path(folder))
        servers = [clusters, clusters.premium]
        contexts = {"shared": "fake", "dedicated": "fake-premium"}
        backend = kubernetes_driver.KubernetesClusters(contexts, str(clusters.kubeconfig))

        def counted(run: Callable[[], None]) -> tuple[float, int, int]:
            for server in servers:
                server.reset_requests()
            seconds, _ = _timed(run)
            requests = sum(len(s.requests) for s in servers)
            writes = sum(len(s.writes()) for s in servers)
            return seconds, requests, writes

        def bulk() -> None:
            with backend.snapshot(kubernetes_steps.INVENTORY):
                _apply_all(backend, platform, tenants, workers)

        try:
            first = counted(lambda: _apply_all(backend, platform, tenants, workers))
            again = counted(bulk)
            unbatched = counted(lambda: _apply_all(backend, platform, tenants, workers))
        finally:
            for server in servers:
                server.server.stop()
    return {
        "apply_tenants": count,
        "apply_first_s": first[0],
        "apply_first_requests": first[1],
        "apply_first_writes": first[2],
        "apply_second_s": again[0],
        "apply_second_requests": again[1],
        "apply_second_writes": again[2],
        "apply_second_per_tenant_lists_s": unbatched[0],
        "apply_second_per_tenant_lists_requests": unbatched[1],
        "apply_second_per_tenant_lists_writes": unbatched[2],
        "target_apply_second_writes_max": 0,
        "target_apply_second_per_tenant_lists_writes_max": 0,
        "target_render_rewrite_files_changed_max": 0,
    }


def main() -> None:
    """Run both benchmarks and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--render-tenants", type=int, default=1000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    result = {"bench": "kubernetes_apply"}
    result.update(bench_render(args.render_tenants))
    result.update(bench_apply(args.tenants, args.parallel))
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
