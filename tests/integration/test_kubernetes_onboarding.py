"""Onboarding's Kubernetes steps end to end: engine + Postgres state store + fake clusters.

The example tenants are onboarded through the real flow (record, compute, config,
network, activate) against the fake kube-apiserver in live mode; a re-run makes no
write at all; drift is caught by `verify` and healed by the next run; `tenantctl diff`
and `tenantctl render` work from the command line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from controlplane import flows, testing
from controlplane.config import loading
from controlplane.drivers import kubernetes as kubernetes_driver
from controlplane.drivers import postgres
from controlplane.engine.retrying import RetryPolicy
from controlplane.engine.steps import StepContext
from controlplane.flows import onboarding
from controlplane.models.platform import PlatformConfig
from controlplane.state import database
from controlplane.state.store import Store
from controlplane.steps import kubernetes as kubernetes_steps
from tenantctl.main import app
from tests.conftest import EXAMPLES

runner = CliRunner()


def _live_configs(tmp_path: Path, kubeconfig: Path) -> Path:
    """The examples with platform.yaml switched to live Kubernetes on the fake clusters."""
    configs = tmp_path / "tenant-configs"
    shutil.copytree(EXAMPLES, configs)
    platform_file = configs / "platform.yaml"
    document = yaml.safe_load(platform_file.read_text())
    document["platform"]["modes"]["kubernetes"] = "live"
    document["platform"]["clusters"] = {
        "shared": {"context": "fake"},
        "premium-globex": {"context": "fake-premium"},
    }
    document["platform"]["kubernetes"] = {"kubeconfig": str(kubeconfig)}
    platform_file.write_text(yaml.safe_dump(document))
    return configs


@pytest.fixture
def store(cli_env: dict[str, str]) -> Iterator[Store]:
    engine = database.connect(cli_env["TENANTCTL_DATABASE_URL"])
    yield Store(engine, actor="test")
    engine.dispose()


class Onboarding:
    """Runs the onboarding flow (without the database and dns steps) per tenant."""

    def __init__(self, store: Store, platform: PlatformConfig, kubeconfig: Path) -> None:
        contexts = {name: c.context for name, c in platform.clusters.items()}
        self.store = store
        self.platform = platform
        self.backend = kubernetes_driver.KubernetesClusters(contexts, str(kubeconfig))
        passwords = postgres.DerivedPasswords(postgres.load_master_key(database.data_dir()))
        deps = flows.Dependencies(registry=store, kubernetes=self.backend, passwords=passwords)
        self.steps = onboarding.steps(deps)

    def run(self, source: loading.TenantSource) -> dict[str, Any]:
        """One operation for the tenant; returns its step records by name."""
        ctx = StepContext(source.tenant, self.platform, "", source_file=source.file)
        outcome = testing.run_operation(
            self.store, ctx, self.steps, policy=RetryPolicy(max_attempts=2)
        )
        assert outcome.status == "succeeded", outcome.message
        return dict(self.store.load_steps(outcome.operation_id))


@pytest.mark.slow
def test_onboarding_applies_everything_and_a_rerun_writes_nothing(
    store: Store, kube_apiserver: Any, tmp_path: Path
) -> None:
    configs = _live_configs(tmp_path, kube_apiserver.kubeconfig)
    platform = loading.load_platform(configs / "platform.yaml")
    sources = loading.load_tenants([configs], platform)
    flow = Onboarding(store, platform, kube_apiserver.kubeconfig)
    assert [s.name for s in flow.steps] == ["record", "compute", "config", "network", "activate"]

    for source in sources:
        records = flow.run(source)
        assert {r.status.value for r in records.values()} == {"done"}
    shared, premium = kube_apiserver.store, kube_apiserver.premium.store
    for tenant_id in ("bluebird", "corner-cafe", "tenant-100", "nordwind"):
        namespace = f"tenant-{tenant_id}"
        assert shared.get("Namespace", namespace) is not None
        assert len(shared.objects("NetworkPolicy", namespace)) >= 6
        assert shared.get("Secret", "tenant-database", namespace) is not None
    assert premium.get("Namespace", "tenant-globex") is not None
    assert shared.get("Namespace", "tenant-globex") is None
    assert store.get_tenant("globex")["status"] == "active"

    kube_apiserver.reset_requests()
    kube_apiserver.premium.reset_requests()
    for source in sources:
        records = flow.run(source)
        assert all(r.skipped for name, r in records.items() if name != "record")
    assert kube_apiserver.writes() == []
    assert kube_apiserver.premium.writes() == []


@pytest.mark.slow
def test_drift_fails_verify_and_the_next_run_reverts_it_and_diff_reports_it(
    store: Store, kube_apiserver: Any, tmp_path: Path
) -> None:
    configs = _live_configs(tmp_path, kube_apiserver.kubeconfig)
    platform = loading.load_platform(configs / "platform.yaml")
    (source,) = [s for s in loading.load_tenants([configs], platform) if s.tenant.id == "bluebird"]
    flow = Onboarding(store, platform, kube_apiserver.kubeconfig)
    flow.run(source)
    clean = runner.invoke(app, ["diff", "-f", str(configs / "bluebird-books.yaml"), "-o", "json"])
    # This flow has no database or dns step: diff reports those backends (what an earlier
    # test left on the shared Postgres may satisfy the database); Kubernetes is in sync.
    [plan] = json.loads(clean.stdout)
    assert "dns" in {c["backend"] for c in plan["changes"]}, clean.output
    assert [c for c in plan["changes"] if c["backend"] == "kubernetes"] == [], clean.output

    def widen(policy: dict[str, Any]) -> None:
        policy["spec"]["egress"][0]["to"] = [{"ipBlock": {"cidr": "0.0.0.0/0"}}]

    kube_apiserver.store.edit("NetworkPolicy", "allow-database", "tenant-bluebird", change=widen)
    drift = runner.invoke(app, ["diff", "-f", str(configs / "bluebird-books.yaml"), "-o", "json"])
    assert drift.exit_code == 7, drift.output
    assert "allow-database" in drift.output
    assert "0.0.0.0/0" in drift.output

    kube_apiserver.reset_requests()
    records = flow.run(source)
    assert not records["network"].skipped
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in kube_apiserver.writes()] == [
        ("PATCH", "allow-database")
    ]
    live = kube_apiserver.store.get("NetworkPolicy", "allow-database", "tenant-bluebird")
    assert live["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.20.0.0/24"}}]
    assert runner.invoke(app, ["diff", "-f", str(configs)]).exit_code == 7  # others not applied


def test_render_writes_every_tenant_byte_identically_without_secrets(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    for out in (first, second):
        result = runner.invoke(app, ["render", "-f", str(EXAMPLES), "--out", str(out)])
        assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    for tenant_id in ("bluebird", "corner-cafe", "globex", "nordwind", "tenant-100"):
        folder = first / tenant_id / "kubernetes"
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        assert kustomization["resources"] == ["compute.yaml", "config.yaml", "network.yaml"]
        assert "kind: Secret\n" not in (folder / "config.yaml").read_text()
    again = runner.invoke(app, ["render", "-f", str(EXAMPLES), "--out", str(first)])
    assert "0 file(s) changed" in again.output


@pytest.mark.slow
def test_kubectl_applies_the_rendered_files_and_the_result_matches_the_live_steps(
    kube_apiserver: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert runner.invoke(app, ["render", "-f", str(EXAMPLES), "--out", str(out)]).exit_code == 0
    for folder in ("_platform", "tenant-100", "bluebird"):
        kustomization = str(out / folder / "kubernetes")
        done = subprocess.run(
            [*_kubectl(kube_apiserver), "apply", *_SSA, "-k", kustomization],
            capture_output=True,
            text=True,
            env=kube_apiserver.kubectl_env(),
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    platform = loading.load_platform(EXAMPLES / "platform.yaml")  # render mode
    backend = kubernetes_driver.KubernetesClusters(
        {"shared": "fake"}, str(kube_apiserver.kubeconfig)
    )
    for source in loading.load_tenants([EXAMPLES], platform):
        if source.tenant.id in ("tenant-100", "bluebird"):
            ctx = StepContext(source.tenant, platform, "check")
            for step in kubernetes_steps.tenant_steps(backend):
                assert step.differences(ctx) == [], (source.tenant.id, step.name)


_SSA = ("--server-side", "--field-manager=tenantctl")


def _kubectl(cluster: Any) -> list[str]:
    return ["kubectl", *cluster.kubectl_args()]


@pytest.mark.slow
def test_cli_apply_reconcile_reverts_drift_that_plain_apply_skips(
    cli_env: dict[str, str], kube_apiserver: Any, tmp_path: Path
) -> None:
    configs = _live_configs(tmp_path, kube_apiserver.kubeconfig)
    bluebird = str(configs / "bluebird-books.yaml")
    first = runner.invoke(app, ["apply", "-f", bluebird, "--yes"])
    assert first.exit_code == 0, first.output

    def widen(policy: dict[str, Any]) -> None:
        policy["spec"]["egress"][0]["to"] = [{"ipBlock": {"cidr": "0.0.0.0/0"}}]

    kube_apiserver.store.edit("NetworkPolicy", "allow-database", "tenant-bluebird", change=widen)
    kube_apiserver.reset_requests()
    plain = runner.invoke(app, ["apply", "-f", bluebird, "--yes", "-o", "json"])
    assert plain.exit_code == 0 and '"unchanged"' in plain.stdout
    assert kube_apiserver.requests == []  # a converged tenant costs no remote call

    healed = runner.invoke(app, ["apply", "-f", bluebird, "--yes", "--reconcile"])
    assert healed.exit_code == 0, healed.output
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in kube_apiserver.writes()] == [
        ("PATCH", "allow-database")
    ]
    assert runner.invoke(app, ["diff", "-f", bluebird]).exit_code == 0


@pytest.mark.slow
def test_cli_verify_of_a_live_tenant_reads_the_database_outputs_for_its_secret(
    cli_env: dict[str, str], kube_apiserver: Any, tmp_path: Path
) -> None:
    configs = _live_configs(tmp_path, kube_apiserver.kubeconfig)
    applied = runner.invoke(app, ["apply", "-f", str(configs / "bluebird-books.yaml"), "--yes"])
    assert applied.exit_code == 0, applied.output
    healthy = runner.invoke(app, ["verify", "bluebird"])
    assert healthy.exit_code == 0, healthy.output
    kube_apiserver.store.remove("Secret", "tenant-database", "tenant-bluebird")
    broken = runner.invoke(app, ["verify", "bluebird"])
    assert broken.exit_code == 6 and "config:" in broken.output


@pytest.mark.slow
def test_a_tenant_sized_in_non_canonical_quantities_onboards_and_reconciles_with_no_write(
    cli_env: dict[str, str], kube_apiserver: Any, tmp_path: Path
) -> None:
    # The fake stores `0.5` as `500m` and `8192Mi` as `8Gi`, like kube-apiserver: a text
    # comparison would fail verify-after-apply and re-apply on every reconcile.
    configs = _live_configs(tmp_path, kube_apiserver.kubeconfig)
    cafe = configs / "corner-cafe.yaml"
    cafe.write_text(cafe.read_text().replace('cpu: "2", memory: 4Gi', 'cpu: "0.5", memory: 8192Mi'))
    first = runner.invoke(app, ["apply", "-f", str(cafe), "--yes"])
    assert first.exit_code == 0, first.output
    quota = kube_apiserver.store.get("ResourceQuota", "tenant-quota", "tenant-corner-cafe")
    assert (quota["spec"]["hard"]["limits.cpu"], quota["spec"]["hard"]["limits.memory"]) == (
        "500m",
        "8Gi",
    )
    assert runner.invoke(app, ["diff", "-f", str(cafe)]).exit_code == 0

    kube_apiserver.reset_requests()
    again = runner.invoke(app, ["apply", "-f", str(cafe), "--yes", "--reconcile"])
    assert again.exit_code == 0, again.output
    assert kube_apiserver.writes() == []


@pytest.mark.slow
def test_an_allow_all_rule_patched_into_the_default_deny_is_found_and_removed(
    cli_env: dict[str, str], kube_apiserver: Any, tmp_path: Path
) -> None:
    # Issue 13: `kubectl patch --type merge` adding `ingress: [{}]` used to go unnoticed.
    configs = _live_configs(tmp_path, kube_apiserver.kubeconfig)
    bluebird = str(configs / "bluebird-books.yaml")
    assert runner.invoke(app, ["apply", "-f", bluebird, "--yes"]).exit_code == 0
    patched = subprocess.run(
        [*_kubectl(kube_apiserver), "-n", "tenant-bluebird", "patch", "networkpolicy",
         "default-deny", "--type", "merge", "-p", '{"spec":{"ingress":[{}]}}'],
        capture_output=True, text=True, env=kube_apiserver.kubectl_env(), check=False, timeout=60,
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr

    drift = runner.invoke(app, ["diff", "-f", bluebird, "-o", "json"])
    assert drift.exit_code == 7, drift.output
    assert "default-deny" in drift.output and ".spec.ingress" in drift.output
    assert runner.invoke(app, ["verify", "bluebird"]).exit_code == 6

    healed = runner.invoke(app, ["apply", "-f", bluebird, "--yes", "--reconcile"])
    assert healed.exit_code == 0, healed.output
    live = kube_apiserver.store.get("NetworkPolicy", "default-deny", "tenant-bluebird")
    assert live["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert runner.invoke(app, ["diff", "-f", bluebird]).exit_code == 0

    kube_apiserver.reset_requests()
    again = runner.invoke(app, ["apply", "-f", bluebird, "--yes", "--reconcile"])
    assert again.exit_code == 0, again.output
    assert kube_apiserver.writes() == []
