"""What the control plane's own deployment runs: `crd` and `migrate` (the Helm chart's CRD
and its migrations Job).

Registered on the main app by `register`; argument parsing, output and signals only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from controlplane import service
from controlplane.service import crd_source

__all__ = ["register"]

Runner = Callable[[Callable[[], Any]], Any]
out = Console(width=None if sys.stdout.isatty() else 160)
NOT_READY = 5  # like any unreachable outside system (docs/cli.md)


def register(app: typer.Typer, run: Runner) -> None:
    """Add `crd` and `migrate` to `app`; `run` maps service errors to exit codes."""

    @app.command()
    def crd() -> None:
        """Print the `Tenant` CustomResourceDefinition (YAML).

        A Tenant object's `spec` is what a tenant file holds under `tenant:` and its name
        is the tenant id, so Argo CD or Flux can sync tenant files as resources; the
        schema is the tenant file's JSON Schema in the structural form the API server
        requires (unknown fields are refused under `kubectl apply`'s strict validation).
        Its status subresource holds conditions Ready/Reconciling/Drifted/Failed and
        observedGeneration; `kubectl get tenants` shows tier, status and readiness.
        `tenantctl reconcile --source kubernetes` acts on the objects.

        Example: tenantctl crd | kubectl apply --server-side -f -
        """
        sys.stdout.write(yaml.safe_dump(crd_source.definition(), sort_keys=False))

    @app.command()
    def migrate() -> None:
        """Bring the state store's schema to this version's newest migration, then exit.

        Every command migrates on connect (concurrent ones wait on an advisory lock);
        running this first, as the Helm chart's pre-install/pre-upgrade Job does, means
        new API and worker pods never wait on a migration. Exit 5 when the state store
        cannot be reached (TENANTCTL_DATABASE_URL).

        Example: tenantctl migrate
        """
        session = run(service.open_session)
        readiness = service.listing.readiness(session)
        for check, found in readiness.checks.items():
            out.print(f"{check}: {escape(found)}", highlight=False)
        if not readiness.ready:
            raise typer.Exit(NOT_READY)
