"""kubeconfig files pointing kubectl and the Python client at fake servers (token auth)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import yaml


class _Server(Protocol):
    @property
    def url(self) -> str: ...

    @property
    def token(self) -> str: ...


def write_kubeconfig(path: Path, contexts: dict[str, _Server], current: str) -> Path:
    """Write a kubeconfig with one cluster, user and context per entry of `contexts`."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": current,
        "clusters": [{"name": n, "cluster": {"server": s.url}} for n, s in contexts.items()],
        "users": [{"name": n, "user": {"token": s.token}} for n, s in contexts.items()],
        "contexts": [
            {"name": n, "context": {"cluster": n, "user": n, "namespace": "default"}}
            for n in contexts
        ],
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path
