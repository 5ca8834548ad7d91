"""`kubernetes.connect`: a kubeconfig context, else (in a pod) the service account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client

from controlplane.drivers import kubernetes
from controlplane.errors import KubernetesError


def test_a_kubeconfig_context_connects(kube_apiserver: Any) -> None:
    api = kubernetes.connect(str(kube_apiserver.kubeconfig), "fake", cluster="shared")
    assert api.configuration.host == kube_apiserver.url


def test_no_kubeconfig_outside_a_pod_names_the_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubernetesError) as caught:
        kubernetes.connect("", "", cluster="shared")
    assert "cluster 'shared': cannot load kube context '(current)'" in caught.value.message


def test_in_a_pod_without_a_token_the_service_account_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(KubernetesError) as caught:
        kubernetes.connect("", "", cluster="shared")
    assert "cluster 'shared': cannot use the pod's service account" in caught.value.message


def test_a_retry_after_is_handed_to_the_runner_not_waited_out(kube_apiserver: Any) -> None:
    """urllib3 retries a 429/503 carrying Retry-After by sleeping through it; the client
    must instead raise at once, so the runner records when to try again."""
    kube_apiserver.faults.fail(429, path_contains="/namespaces", retry_after=2)
    api = kubernetes.connect(str(kube_apiserver.kubeconfig), "fake", cluster="shared")
    kube_apiserver.reset_requests()
    with (
        pytest.raises(KubernetesError) as caught,
        kubernetes.translated("list namespaces", "shared"),
    ):
        k8s_client.CoreV1Api(api).list_namespace()
    assert caught.value.retryable and caught.value.retry_after == 2
    assert [r.status for r in kube_apiserver.requests] == [429]  # one request, no wait
