"""`tenantctl crd`: the Tenant custom resource (docs/kubernetes.md).

Registered on the main app by `register`; argument parsing and output only.
"""

from __future__ import annotations

import sys

import typer
import yaml

from controlplane.service import crd_source

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add `crd` to `app`."""

    @app.command()
    def crd() -> None:
        """Print the `Tenant` CustomResourceDefinition (YAML).

        A Tenant object's `spec` is what a tenant file holds under `tenant:` and its name
        is the tenant id, so Argo CD or Flux can sync tenant files as resources; the
        schema is the tenant file's JSON Schema in the structural form the API server
        requires (unknown fields are refused under `kubectl apply`'s strict validation).
        Its status subresource holds conditions Ready/Reconciling/Drifted/Failed and
        observedGeneration; `kubectl get tenants` shows tier, status and readiness.

        Example: tenantctl crd | kubectl apply --server-side -f -
        """
        sys.stdout.write(yaml.safe_dump(crd_source.definition(), sort_keys=False))
