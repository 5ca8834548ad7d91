"""Benchmark the CLI's own path: `tenantctl apply --reconcile` over a converged fleet.

Each part compares with a baseline measured in the same run: the no-op `apply` (state read
in bulk, no resource read) against `apply --reconcile` (every resource read back).

- render: 1,000 tenants (one in ten enterprise, the rest standard) are onboarded with
  `tenantctl apply` on the embedded default (real terraform, real Postgres, Kubernetes and
  Cloudflare in render mode); then `tenantctl apply` (no-op) and `tenantctl apply
  --reconcile` (verifies every tenant in bulk) are timed. Target: reconcile under 10 s.
- live: 100 tenants onboarded the same way with Kubernetes live against the fake
  kube-apiserver (tests/fakes, two clusters) and DNS live against the Cloudflare emulator
  (`--live-dns render` keeps DNS in files: onboarding 1,000 tenants through Cloudflare's
  1,200 requests per 5 minutes takes over 20 minutes); then `tenantctl apply --reconcile`
  with the requests both fakes received counted. Target: under 10 s, a few dozen reads,
  0 writes. The same GETs are then replayed without the client (raw bytes, not parsed), so
  the fake apiserver's share of the time shows. Then 10 tenants drift (the quota of half
  edited, the DNS record of the other half deleted; quotas only with `--live-dns render`)
  and one `tenantctl reconcile` pass runs: target exactly one write per drifted object.
- terraform: the per-tenant alternative side by side, one `terraform plan` of a converged
  workspace (a `terraform_data` resource, built-ins only) timed and multiplied by each
  fleet's size (render and live).

Every figure is a `tenantctl` process as a user runs it (wall time, Python start included).
Prints one JSON object. Usage: .venv/bin/python bench/reconcile.py [--tenants 1000]
[--live 100] [--live-dns live|render]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

DRIFTED = 10  # tenants the live part drifts (one object each) before one reconcile pass
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
  modes: {{kubernetes: live, cloudflare: {dns}}}
  cloudflare_zone_id: "{zone}"
"""
CLOUDFLARE_TOKEN = "bench-token"  # noqa: S105 - the emulator's made-up token


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


@contextlib.contextmanager
def _cloudflare(env: dict[str, str], dns: str) -> Iterator[tuple[Any, str]]:
    """The Cloudflare emulator on a loopback port and its zone id ("" with DNS rendered);
    `env` points tenantctl there."""
    fake = importlib.import_module("tests.fakes.cloudflare_api")
    emulator = fake.CloudflareEmulator(tokens=[CLOUDFLARE_TOKEN])
    if dns != "live":
        yield emulator, ""
        return
    zone = emulator.add_zone("tenants.example.com")
    with fake.serve(emulator) as url:
        env.update(CLOUDFLARE_API_TOKEN=CLOUDFLARE_TOKEN, CLOUDFLARE_BASE_URL=url)
        yield emulator, zone


def bench_live(env: dict[str, str], root: Path, count: int, dns: str) -> dict[str, Any]:
    fixtures = importlib.import_module("tests.fakes.kube_fixtures")
    (root / "kube").mkdir()
    clusters = fixtures.start_clusters(root / "kube")
    servers = [clusters, clusters.premium]
    env = dict(env)
    try:
        with _cloudflare(env, dns) as (emulator, zone):
            platform = LIVE_PLATFORM.format(kubeconfig=clusters.kubeconfig, dns=dns, zone=zone)
            fleet = _fleet(root / "live", "k", count, platform)
            result: dict[str, Any] = {"live_tenants": count, "live_dns": dns}
            result["live_onboard_s"], _ = _tenantctl(
                env, "apply", "-f", str(fleet), "--yes", "--parallel", "8"
            )
            result.update(_noop_pass(env, fleet, servers, emulator))
            result.update(_drift_pass(env, fleet, clusters=clusters, emulator=emulator, zone=zone))
    finally:
        for server in servers:
            server.server.stop()
    return result


def _reset(servers: list[Any], emulator: Any) -> None:
    for server in servers:
        server.reset_requests()
    emulator.calls.clear()


def _noop_pass(
    env: dict[str, str], fleet: Path, servers: list[Any], emulator: Any
) -> dict[str, Any]:
    """`apply --reconcile` of the converged fleet: time, reads and writes of both fakes."""
    _reset(servers, emulator)
    seconds, reconciled = _tenantctl(env, "apply", "-f", str(fleet), "--yes", "--reconcile")
    requests = sum(len(s.requests) for s in servers)
    writes = sum(len(s.writes()) for s in servers) + len(emulator.writes())
    reads = requests + len(emulator.calls) - writes
    return {
        "live_reconcile_s": seconds,
        "live_reconcile_unchanged": _results(reconciled).get("unchanged", 0),
        "live_reconcile_reads": reads,
        "live_reconcile_dns_reads": len(emulator.calls) - len(emulator.writes()),
        "live_reconcile_writes": writes,
        # The fake apiserver answering the same GETs again, no client parsing them: the
        # part of live_reconcile_s a real kube-apiserver would answer at its own speed.
        "live_reconcile_fake_apiserver_s": _replayed(servers),
        "target_live_reconcile_s_max": 10.0,
        "target_live_reconcile_writes_max": 0,
        "target_live_reconcile_reads_max": 60,
    }


def _replayed(servers: list[Any]) -> float:
    """Seconds the fake apiservers take to answer their recorded GETs again (raw bytes)."""
    took = 0.0
    for server in servers:
        url = urlsplit(server.url)
        connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=120)
        headers = {"Authorization": f"Bearer {server.token}", "Accept": "application/json"}
        for request in [r for r in server.requests if r.method == "GET"]:
            start = time.perf_counter()
            connection.request("GET", f"{request.path}?{urlencode(request.query)}", headers=headers)
            connection.getresponse().read()
            took += time.perf_counter() - start
        connection.close()
    return round(took, 3)


def _drift_pass(
    env: dict[str, str], fleet: Path, *, clusters: Any, emulator: Any, zone: str
) -> dict[str, Any]:
    """Drift one object in each of DRIFTED tenants, then one `tenantctl reconcile` pass:
    exactly one write per drifted object (and the pass repairs every drifted tenant)."""
    count = min(DRIFTED, sum(1 for _ in fleet.glob("k*.yaml")))
    dns_drifted = count // 2 if zone else 0
    for i in range(count - dns_drifted):
        clusters.store.edit("ResourceQuota", "tenant-quota", f"tenant-k{i:04d}", change=_more_pods)
    for i in range(count - dns_drifted, count):
        _delete_record(emulator, zone, f"k{i:04d}.tenants.example.com")
    servers = [clusters, clusters.premium]
    _reset(servers, emulator)
    seconds, healed = _tenantctl(env, "reconcile", str(fleet))
    writes = sum(len(s.writes()) for s in servers) + len(emulator.writes())
    return {
        "live_drift_tenants": count,
        "live_drift_objects": count,
        "live_drift_reconcile_s": seconds,
        "live_drift_repaired": _results(healed).get("repaired", 0),
        "live_drift_writes": writes,
        # Exactly the drifted objects written: no more (nothing else touched), no fewer.
        "target_live_drift_writes_eq": count,
        "target_live_drift_repaired_eq": count,
    }


def _more_pods(quota: dict[str, Any]) -> None:
    """Raise a ResourceQuota, as `kubectl edit` would."""
    quota["spec"]["hard"]["pods"] = "999"


def _delete_record(emulator: Any, zone: str, name: str) -> None:
    """Delete a tenant's CNAME, as someone in the Cloudflare dashboard would."""
    with emulator._lock:  # the emulator's own store, edited from outside its API
        records = emulator.zones[zone].records
        for record_id in [k for k, r in records.items() if r["name"] == name]:
            del records[record_id]


TF_UNIT = """resource "terraform_data" "tenant" {
  input = { tenant = "t0001", tier = "standard" }
}
"""


def bench_terraform_plan(root: Path, fleets: dict[str, int]) -> dict[str, Any]:
    """The per-tenant alternative, in the same run: one `terraform plan` of a converged
    one-resource workspace (built-ins only), multiplied out to each fleet (render, live)."""
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
        **{f"terraform_plan_{name}_fleet_s": round(one * n, 1) for name, n in fleets.items()},
    }


def main() -> None:
    """Run both benchmarks against one fresh embedded state store; print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--live", type=int, default=100)
    parser.add_argument("--live-dns", choices=["live", "render"], default="live")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tenantctl-bench-") as folder:
        root = Path(folder)
        # tenantctl as installed: with its bytecode cached (the first run writes it).
        skip = {"TENANTCTL_DATABASE_URL", "PYTHONDONTWRITEBYTECODE"}
        env = {k: v for k, v in os.environ.items() if k not in skip}
        env["TENANTCTL_DATA_DIR"] = str(root / "data")
        result: dict[str, Any] = {"bench": "reconcile"}
        try:
            result.update(bench_render(env, root, args.tenants))
            result.update(bench_live(env, root, args.live, args.live_dns))
            fleets = {"render": args.tenants, "live": args.live}
            result.update(bench_terraform_plan(root, fleets))
        finally:
            _embedded.stop(root / "data" / "pgdata")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
