"""Benchmark the `database` step: 100 standard tenants onboarded, then a no-op re-run.

The first pass runs `apply` + `verify` per tenant (terraform init + apply of the
shared-schema module against a real Postgres). The second pass applies the engine's skip
rule (fingerprint unchanged and `verify` passes -> skip) and counts how many terraform
processes it started: the target is 0. Prints JSON.

Usage: .venv/bin/python bench/database.py [--tenants 100] [--parallel 4]
(`bench/run.py` fails the run if the no-op re-run starts any terraform process.)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pgserver

from controlplane.drivers import postgres, terraform
from controlplane.engine.steps import StepContext
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.steps import database

MODULES = Path(__file__).resolve().parents[1] / "terraform" / "modules"


def _step(root: Path, url: str) -> tuple[database.DatabaseStep, terraform.SubprocessRunner]:
    passwords = postgres.DerivedPasswords(b"bench-master-key")

    def secrets(tenant_id: str, module: str) -> dict[str, str]:
        del module
        return {"app_password_verifier": postgres.scram_verifier(passwords.password(tenant_id))}

    runner = terraform.SubprocessRunner()
    targets = {"shared": terraform.Target(env=postgres.libpq_env(url))}
    driver = terraform.Terraform(root / "tf", MODULES, targets, secrets=secrets, runner=runner)
    checker = postgres.TenantDatabases({"shared": url}, passwords)
    return database.DatabaseStep(driver, checker), runner


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    platform = PlatformConfig()
    with tempfile.TemporaryDirectory(prefix="bench-db-") as tmp:
        root = Path(tmp)
        server = pgserver.get_server(root / "pg", cleanup_mode="stop")
        url = postgres.ensure_database(str(server.get_uri()), "bench_shared")
        step, runner = _step(root, url)
        contexts = [
            StepContext(
                Tenant.model_validate(
                    {
                        "id": f"bench-{i:03d}",
                        "name": f"Bench {i}",
                        "tier": "standard",
                        "region": "us-east-1",
                    }
                ),
                platform,
                "bench",
            )
            for i in range(args.tenants)
        ]
        recorded: dict[str, str] = {}

        def onboard(ctx: StepContext) -> None:
            step.apply(ctx)
            problems = step.verify(ctx)
            if problems:
                message = f"{ctx.tenant.id}: {problems}"
                raise SystemExit(message)
            recorded[ctx.tenant.id] = step.fingerprint(ctx)

        def rerun(ctx: StepContext) -> bool:
            if recorded.get(ctx.tenant.id) == step.fingerprint(ctx) and not step.verify(ctx):
                return True  # skipped, exactly like engine.running.Runner
            onboard(ctx)
            return False

        started = time.perf_counter()
        with ThreadPoolExecutor(args.parallel) as pool:
            list(pool.map(onboard, contexts))
        first = time.perf_counter() - started
        first_processes = runner.started

        started = time.perf_counter()
        with ThreadPoolExecutor(args.parallel) as pool:
            skipped = sum(pool.map(rerun, contexts))
        second = time.perf_counter() - started
        server.cleanup()
    print(
        json.dumps(
            {
                "bench": "database",
                "tenants": args.tenants,
                "parallel": args.parallel,
                "onboard_s": round(first, 2),
                "onboard_terraform_processes": first_processes,
                "noop_rerun_s": round(second, 3),
                "noop_rerun_skipped": skipped,
                "noop_rerun_terraform_processes": runner.started - first_processes,
                "target_noop_rerun_terraform_processes_max": 0,
            }
        )
    )


if __name__ == "__main__":
    main()
