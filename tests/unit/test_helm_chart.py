"""helm/tenant-control-plane: rendered with helm-python-sdk (Helm's Go SDK, no helm binary),
linted, every manifest strict-valid for Kubernetes 1.31, RBAC exactly the drivers' inventory."""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from controlplane import wiring
from controlplane.service import crd_source
from tenantctl.main import app
from tests.conftest import ROOT

CHART = ROOT / "helm" / "tenant-control-plane"
K8S_VERSION = "1.31.0"
NAMESPACE = "control-plane"


@cache
def _manifests(values_text: str = "") -> tuple[dict[str, Any], ...]:
    values = yaml.safe_load(values_text) if values_text else None
    rendered = helm.Chart.load(CHART).render(
        values, name="tcp", namespace=NAMESPACE, is_install=True
    )
    return tuple(d for text in rendered.values() for d in yaml.safe_load_all(text) if d)


def _of(kind: str, values_text: str = "") -> list[dict[str, Any]]:
    return [m for m in _manifests(values_text) if m["kind"] == kind]


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    owners = [*_of("Deployment"), *_of("Job")]
    return [(o["metadata"]["name"], o["spec"]["template"]["spec"]) for o in owners]


def test_every_rendered_manifest_is_strictly_valid() -> None:
    kinds = []
    for manifest in _manifests():
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
        kinds.append(manifest["kind"])
    assert sorted(set(kinds)) == [
        "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Job",
        "NetworkPolicy", "PodDisruptionBudget", "Service", "ServiceAccount",
    ]  # fmt: skip
    names = {d["metadata"]["name"] for d in _of("Deployment")}
    assert names == {f"tcp-tenant-control-plane-{c}" for c in ("api", "workers", "reconciler")}


def test_the_chart_lints_clean() -> None:
    report = helm.lint(CHART, strict=True, kube_version=f"v{K8S_VERSION}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_the_cluster_role_is_exactly_what_the_drivers_use() -> None:
    (role,) = _of("ClusterRole")
    rendered = {
        (group, resource, tuple(rule["verbs"]))
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    wanted = set(wiring.rbac_rules())
    hint = yaml.safe_dump(
        [{"apiGroups": [g], "resources": [r], "verbs": list(v)} for g, r, v in wanted],
        default_flow_style=None,
    )
    assert rendered == wanted, f"write helm/.../files/rbac-rules.yaml as:\n{hint}"
    verbs = {v for _, _, vs in rendered for v in vs}
    assert "*" not in verbs and not verbs & {"escalate", "bind", "impersonate"}
    (binding,) = _of("ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "tcp-tenant-control-plane", "namespace": NAMESPACE}
    ]


def test_the_chart_ships_the_tenant_crd() -> None:
    (crd,) = helm.Chart.load(CHART).crds
    hint = "regenerate with: tenantctl crd > helm/tenant-control-plane/crds/" + crd["name"][5:]
    assert yaml.safe_load(crd["data"]) == crd_source.definition(), hint


def test_every_pod_runs_restricted() -> None:
    for name, pod in _pod_specs():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert set(container["resources"]) == {"requests", "limits"}, name


def test_the_api_is_probed_and_served() -> None:
    (api,) = [d for d in _of("Deployment") if d["metadata"]["name"].endswith("-api")]
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "serve"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    (service,) = _of("Service")
    assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]
    budgets = {p["metadata"]["name"]: p["spec"]["selector"] for p in _of("PodDisruptionBudget")}
    assert budgets["tcp-tenant-control-plane-api"] == api["spec"]["selector"]


def test_commands_of_workers_reconciler_and_migrations() -> None:
    commands = {
        name.removeprefix("tcp-tenant-control-plane-"): pod["containers"][0]["args"]
        for name, pod in _pod_specs()
    }
    assert commands["workers"] == ["worker", "--concurrency", "4"]
    assert commands["reconciler"][:6] == [
        "reconcile", "--source", "kubernetes", "--watch", "--interval", "300",
    ]  # fmt: skip
    assert commands["migrations"] == ["migrate"]
    (job,) = _of("Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_secrets_are_referenced_never_carried() -> None:
    assert _of("Secret") == []
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    secret_vars = set(values["secretEnv"]["keys"])
    assert {"TENANTCTL_DATABASE_URL", "TENANTCTL_MASTER_KEY"} <= secret_vars
    for name, pod in _pod_specs():
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        for variable in secret_vars:
            assert "value" not in env[variable], (name, variable)
            assert env[variable]["valueFrom"]["secretKeyRef"]["name"] == "tenantctl-secrets"
    (config,) = _of("ConfigMap")
    assert yaml.safe_load(config["data"]["platform.yaml"]) == {"platform": values["platform"]}


@pytest.mark.parametrize(
    ("reason", "values", "want"),
    [
        ("a secret value inline", {"secretEnv": {"value": "hunter2"}}, "'value' not allowed"),
        ("no api replica", {"api": {"replicas": 0}}, "/api/replicas"),
        ("unknown top-level key", {"replicas": 3}, "'replicas' not allowed"),
        ("bad digest", {"image": {"digest": "latest"}}, "/image/digest"),
    ],
)
def test_values_schema_refuses_bad_values(reason: str, values: dict[str, Any], want: str) -> None:
    with pytest.raises(helm.HelmError) as caught:
        helm.Chart.load(CHART).render(values, name="tcp", namespace=NAMESPACE)
    assert want in str(caught.value), reason


def test_reconciler_and_rbac_can_be_switched_off() -> None:
    text = "reconciler: {enabled: false}\nrbac: {create: false}\n"
    assert [d["metadata"]["name"] for d in _of("Deployment", text)] == [
        "tcp-tenant-control-plane-api",
        "tcp-tenant-control-plane-workers",
    ]
    assert _of("ClusterRole", text) == []


@pytest.mark.slow
def test_checkov_passes_on_the_rendered_chart(tmp_path: Path) -> None:
    for index, manifest in enumerate(_manifests()):
        (tmp_path / f"{index:02d}.yaml").write_text(yaml.safe_dump(manifest))
    checkov = Path(sys.executable).parent / "checkov"
    args = [str(checkov), "-d", str(tmp_path), "--framework", "kubernetes", "--quiet", "--compact"]
    result = subprocess.run(args, capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:]


def test_migrate_brings_the_schema_to_the_newest_revision(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "state_store: ok" in result.stdout
    assert "migrations: current" in result.stdout


def test_migrate_without_a_state_store_is_exit_5(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTCTL_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    result = CliRunner().invoke(app, ["migrate"])
    assert result.exit_code == 5, result.output
    assert "cannot reach the state store" in result.stderr
