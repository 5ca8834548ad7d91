"""Benchmark the CLI's own path: `tenantctl apply --reconcile` over a converged fleet.

Each part compares with a baseline measured in the same run: the no-op `apply` (state read
in bulk, no resource read) against `apply --reconcile` (every resource read back).

- render: 1,000 tenants (one in ten enterprise, the rest standard) are onboarded with
  `tenantctl apply` on the embedded default (real terraform, real Postgres, Kubernetes and
  Cloudflare in render mode); then `tenantctl apply` (no-op) and `tenantctl apply
  --reconcile` (verifies every tenant in bulk) are timed. Target: reconcile under 10 s.
- live: 100 tenants onboarded the same way with Kubernetes in live mode against the fake
  kube-apiserver (tests/fakes, two clusters); then `tenantctl apply --reconcile` with the
  requests the fake received counted. Target: a few dozen reads, 0 writes. Then the quota
  of 10 tenants is edited and one `tenantctl reconcile` pass runs: target exactly 10 writes
  (one per drifted object), 10 tenants repaired.
- terraform: the per-tenant alternative side by side, one `terraform plan` of a converged
  workspace (a `terraform_data` resource, built-ins only) timed and multiplied by the
  render fleet's size.

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

DRIFTED = 10  # tenants whose quota the live part edits before one reconcile pass
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
        drifted = _drift_quotas(clusters, min(DRIFTED, count))
        for server in servers:
            server.reset_requests()
        heal_s, healed = _tenantctl(env, "reconcile", str(fleet))
        heal_writes = sum(len(s.writes()) for s in servers)
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
        # One `tenantctl reconcile` pass after a quota was edited in `drifted` tenants:
        # exactly one write per drifted object, none for the rest.
        "live_drift_tenants": drifted,
        "live_drift_reconcile_s": heal_s,
        "live_drift_repaired": _results(healed).get("repaired", 0),
        "live_drift_writes": heal_writes,
        "target_live_drift_writes": drifted,
    }


def _drift_quotas(clusters: Any, count: int) -> int:
    """Raise the ResourceQuota of the first `count` tenants, as `kubectl edit` would."""

    def more_pods(quota: dict[str, Any]) -> None:
        quota["spec"]["hard"]["pods"] = "999"

    for i in range(count):
        clusters.store.edit("ResourceQuota", "tenant-quota", f"tenant-k{i:04d}", change=more_pods)
    return count


TF_UNIT = """resource "terraform_data" "tenant" {
  input = { tenant = "t0001", tier = "standard" }
}
"""


def bench_terraform_plan(root: Path, count: int) -> dict[str, Any]:
    """The per-tenant alternative, in the same run: one `terraform plan` of a converged
    one-resource workspace (built-ins only), multiplied out to the fleet."""
    unit = root / "tf-unit"
    unit.mkdir()
    (unit / "main.tf").write_text(TF_UNIT)
    tf_env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}

    def terraform(*args: str) -> float:
        start = time.perf_counter()
        subprocess.run(
            ["terraform", *args, "-input=false", "-no-color"],
            cwd=unit,
            env=tf_env,
            capture_output=True,
            check=True,
        )
        return time.perf_counter() - start

    terraform("init")
    terraform("apply", "-auto-approve")
    one = min(terraform("plan", "-detailed-exitcode") for _ in range(3))
    return {
        "terraform_plan_one_s": round(one, 3),
        "terraform_plan_fleet_s": round(one * count, 1),
        "terraform_plan_fleet_tenants": count,
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
            result.update(bench_terraform_plan(root, args.tenants))
        finally:
            _embedded.stop(root / "data" / "pgdata")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
