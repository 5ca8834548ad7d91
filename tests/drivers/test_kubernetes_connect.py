"""`kubernetes.connect`: a kubeconfig context, else (in a pod) the service account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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
