"""Benchmark the CLI's own path: `tenantctl apply --reconcile` over a converged fleet.

Each part compares with a baseline measured in the same run: the no-op `apply` (state read
in bulk, no resource read) against `apply --reconcile` (every resource read back).

- render: 1,000 tenants (one in ten enterprise, the rest standard) are onboarded with
  `tenantctl apply` on the embedded default (real terraform, real Postgres, Kubernetes and
  Cloudflare in render mode); then `tenantctl apply` (no-op) and `tenantctl apply
  --reconcile` (verifies every tenant in bulk) are timed. Target: reconcile under 10 s.
- live: 100 tenants onboarded the same way with Kubernetes in live mode against the fake
  kube-apiserver (tests/fakes, two clusters); then `tenantctl apply --reconcile` with the
  requests the fake received counted. Target: a few dozen reads, 0 writes.

Every figure is a `tenantctl` process as a user runs it (wall time, Python start included).
Prints one JSON object. Usage: .venv/bin/python bench/reconcile.py [--tenants 1000] [--live 100]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # the fake kube-apiserver lives with the tests

from bench import _embedded  # noqa: E402

TENANTCTL = [sys.executable, "-m", "tenantctl.main"]
RENDER_PLATFORM = """\
platform:
  base_domain: tenants.example.com
  regions: [us-east-1]
"""
LIVE_PLATFORM = """\
platform:
  base_domain: tenants.example.com
  regions: [us-east-1]
  clusters:
    shared: {{context: fake}}
  kubernetes: {{kubeconfig: "{kubeconfig}"}}
  modes: {{kubernetes: live}}
"""


def _fleet(folder: Path, prefix: str, count: int, platform: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "platform.yaml").write_text(platform)
    for i in range(count):
        tier = "enterprise" if i % 10 == 0 else "standard"
        (folder / f"{prefix}{i:04d}.yaml").write_text(
            f"tenant:\n  id: {prefix}{i:04d}\n  name: Tenant {i}\n  tier: {tier}\n"
            "  region: us-east-1\n  features: {ai_agents: true}\n"
        )
    return folder


def _tenantctl(env: dict[str, str], *args: str) -> tuple[float, list[dict[str, Any]]]:
    start = time.perf_counter()
    done = subprocess.run(
        [*TENANTCTL, *args, "-o", "json"], env=env, capture_output=True, text=True, check=False
    )
    seconds = round(time.perf_counter() - start, 3)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        msg = f"tenantctl {' '.join(args)} exited {done.returncode}"
        raise SystemExit(msg)
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return seconds, rows


def _results(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["result"]] = counts.get(row["result"], 0) + 1
    return counts


def bench_render(env: dict[str, str], root: Path, count: int) -> dict[str, Any]:
    fleet = _fleet(root / "render", "r", count, RENDER_PLATFORM)
    out = str(root / "out")
    onboard_s, _ = _tenantctl(
        env, "apply", "-f", str(fleet), "--yes", "--parallel", "8", "--out", out
    )
    noop_s, noop = _tenantctl(env, "apply", "-f", str(fleet), "--yes", "--out", out)
    reconcile_s, reconciled = _tenantctl(
        env, "apply", "-f", str(fleet), "--yes", "--reconcile", "--out", out
    )
    return {
        "render_tenants": count,
        "render_onboard_s": onboard_s,
        "render_apply_noop_s": noop_s,
        "render_apply_noop_unchanged": _results(noop).get("unchanged", 0),
        "render_reconcile_s": reconcile_s,
        "render_reconcile_unchanged": _results(reconciled).get("unchanged", 0),
        # Same-run baseline: what verifying every resource costs over the no-op apply.
        "render_reconcile_over_noop": round(reconcile_s / noop_s, 2),
        "target_render_reconcile_s_max": 10.0,
    }


def bench_live(env: dict[str, str], root: Path, count: int) -> dict[str, Any]:
    fixtures = importlib.import_module("tests.fakes.kube_fixtures")
    (root / "kube").mkdir()
    clusters = fixtures.start_clusters(root / "kube")
    servers = [clusters, clusters.premium]
    try:
        platform = LIVE_PLATFORM.format(kubeconfig=clusters.kubeconfig)
        fleet = _fleet(root / "live", "k", count, platform)
        onboard_s, _ = _tenantctl(env, "apply", "-f", str(fleet), "--yes", "--parallel", "8")
        for server in servers:
            server.reset_requests()
        reconcile_s, reconciled = _tenantctl(env, "apply", "-f", str(fleet), "--yes", "--reconcile")
        requests = sum(len(s.requests) for s in servers)
        writes = sum(len(s.writes()) for s in servers)
    finally:
        for server in servers:
            server.server.stop()
    return {
        "live_tenants": count,
        "live_onboard_s": onboard_s,
        "live_reconcile_s": reconcile_s,
        "live_reconcile_unchanged": _results(reconciled).get("unchanged", 0),
        "live_reconcile_reads": requests - writes,
        "live_reconcile_writes": writes,
        "target_live_reconcile_writes_max": 0,
        "target_live_reconcile_reads_max": 60,
    }


def main() -> None:
    """Run both benchmarks against one fresh embedded state store; print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--live", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tenantctl-bench-") as folder:
        root = Path(folder)
        env = {k: v for k, v in os.environ.items() if k != "TENANTCTL_DATABASE_URL"}
        env["TENANTCTL_DATA_DIR"] = str(root / "data")
        result: dict[str, Any] = {"bench": "reconcile"}
        try:
            result.update(bench_render(env, root, args.tenants))
            result.update(bench_live(env, root, args.live))
        finally:
            _embedded.stop(root / "data" / "pgdata")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
