"""The one service layer: CLI, API and workers call this, never drivers or state.

It loads and validates input, builds the steps of a flow with their drivers, and runs
operations per tenant under a lease, many tenants in parallel (bounded).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane import wiring
from controlplane.config import loading
from controlplane.config.loading import TenantSource
from controlplane.drivers import cloudflare, postgres, terraform
from controlplane.engine import diffing
from controlplane.engine.retrying import RetryPolicy
from controlplane.engine.running import Runner, StepEvent
from controlplane.engine.steps import Change, Step, StepContext
from controlplane.errors import ConfigError, ControlPlaneError, NotFoundError
from controlplane.flows import onboarding
from controlplane.models.operations import Lease, StepName
from controlplane.models.platform import DriverMode, PlatformConfig
from controlplane.models.tenants import Tenant, TenantFile
from controlplane.resources import dns as dns_resources
from controlplane.resources import rendering
from controlplane.state import budgets, database
from controlplane.state.store import Store, default_actor, new_holder
from controlplane.steps import dns as dns_step
from controlplane.steps import kubernetes as kubernetes_steps
from controlplane.steps.records import spec_fingerprint

__all__ = [
    "FAULT_ENV",
    "ApplyOutcome",
    "Service",
    "TenantPlan",
    "load",
    "tenant_schema",
]

log = logging.getLogger(__name__)

# Crash-test failpoint: `TENANTCTL_FAULT_KILL_AFTER_STEP=record` makes the process
# SIGKILL itself right after that step is recorded, exactly like `kill -9` between
# steps. Used by the resume tests; harmless when unset.
FAULT_ENV = "TENANTCTL_FAULT_KILL_AFTER_STEP"


def tenant_schema() -> dict[str, Any]:
    """JSON Schema of the tenant file, for editors and CI."""
    schema = TenantFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tenantctl tenant file"
    return schema


def load(
    paths: Sequence[Path], platform_file: Path | None = None
) -> tuple[PlatformConfig, list[TenantSource]]:
    """Load the platform and every tenant under `paths`; ConfigError lists all problems."""
    platform_path = platform_file or loading.find_platform_file(paths)
    platform = loading.load_platform(platform_path)
    return platform, loading.load_tenants(paths, platform)


@dataclass(frozen=True)
class TenantPlan:
    """What `apply` would do for one tenant."""

    tenant_id: str
    file: str
    action: str
    fields: list[str]
    steps: list[Change]


@dataclass(frozen=True)
class ApplyOutcome:
    """What `apply` did for one tenant."""

    tenant_id: str
    action: str
    operation_id: str = ""
    message: str = ""
    exit_code: int = 0


@dataclass
class Service:
    """Stateful operations over the state store."""

    store: Store
    lock_wait: float = 30.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    on_event: Callable[[StepEvent], None] = lambda _event: None
    holder: str = ""
    # Render mode writes here: OUT/<tenant-id>/dns.yaml, like `tenantctl render`.
    out_dir: Path = field(default_factory=lambda: Path("out"))
    _dns_drivers: dict[str, cloudflare.CloudflareDns] = field(default_factory=dict, repr=False)
    _database_drivers: dict[str, tuple[terraform.Terraform, postgres.TenantDatabases]] = field(
        default_factory=dict, repr=False
    )
    _kubernetes_backends: dict[str, kubernetes_steps.KubernetesBackend] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        self.holder = self.holder or new_holder(self.store.actor)

    @classmethod
    def open(cls, *, actor: str | None = None, **options: Any) -> Service:
        """Connect to the configured state store (embedded by default) and migrate it."""
        store = Store(database.connect(), actor=actor or default_actor())
        return cls(store, **options)

    def _steps(self, platform: PlatformConfig) -> list[Step]:
        return onboarding.steps(self._dependencies(platform))

    def _dependencies(self, platform: PlatformConfig) -> onboarding.Dependencies:
        """Build each step's driver for the platform's modes (live or render)."""
        key = platform.model_dump_json()
        if key not in self._database_drivers:
            self._database_drivers[key] = wiring.database_drivers(platform)
        provisioner, isolation = self._database_drivers[key]
        return onboarding.Dependencies(
            registry=self.store,
            provisioner=provisioner,
            isolation=isolation,
            dns_provider=self._dns_provider(platform),
            kubernetes=self._kubernetes(platform),
            passwords=self._passwords(platform),
        )

    def _dns_provider(self, platform: PlatformConfig) -> dns_step.DnsProvider:
        """Cloudflare through the shared request budget (live), or `OUT/<id>/dns.yaml`."""
        if platform.modes.cloudflare is not DriverMode.LIVE:
            return cloudflare.RenderedDns(self.out_dir)
        key = f"{platform.cloudflare_zone_id}/{platform.cloudflare_request_budget}"
        if key not in self._dns_drivers:
            budget = budgets.PostgresRequestBudget(
                self.store.engine, "cloudflare", limit=platform.cloudflare_request_budget
            )
            self._dns_drivers[key] = cloudflare.CloudflareDns(
                platform.cloudflare_zone_id, budget=budget, tags=platform.cloudflare_record_tags
            )
        return self._dns_drivers[key]

    def _kubernetes(self, platform: PlatformConfig) -> kubernetes_steps.KubernetesBackend:
        """One backend per cluster set, so API connections are reused across tenants."""
        settings = (platform.modes.kubernetes, platform.kubernetes.kubeconfig, self.out_dir)
        key = repr((settings, sorted(platform.clusters.items())))
        if key not in self._kubernetes_backends:
            self._kubernetes_backends[key] = wiring.kubernetes_backend(platform, self.out_dir)
        return self._kubernetes_backends[key]

    @staticmethod
    def _passwords(platform: PlatformConfig) -> kubernetes_steps.PasswordSource | None:
        """Live mode writes the database Secret; render mode only references it."""
        if platform.modes.kubernetes != "live":
            return None
        return postgres.DerivedPasswords(postgres.load_master_key(database.data_dir()))

    def _context(
        self, source: TenantSource, platform: PlatformConfig, operation_id: str = ""
    ) -> StepContext:
        return StepContext(
            source.tenant, platform, operation_id, source_file=str(Path(source.file).resolve())
        )

    def check_immutable(self, sources: Iterable[TenantSource]) -> None:
        """Refuse a file that now declares a different id than the one recorded from it."""
        problems = []
        for source in sources:
            recorded = self.store.owner_of_source(str(Path(source.file).resolve()))
            if recorded is not None and recorded != source.tenant.id:
                problems.append(
                    (
                        source.locate("tenant.id"),
                        f"id is immutable: this file recorded tenant '{recorded}'; "
                        "to create a new tenant use a new file",
                    )
                )
        if problems:
            raise ConfigError(problems)

    def plan(self, sources: Sequence[TenantSource], platform: PlatformConfig) -> list[TenantPlan]:
        """Compare each tenant file with what is recorded; changes nothing."""
        self.check_immutable(sources)
        plans = []
        for source in sources:
            ctx = self._context(source, platform)
            spec = source.tenant.model_dump(mode="json")
            try:
                row = self.store.get_tenant(source.tenant.id)
            except NotFoundError:
                action, fields = "create", []
            else:
                fields = diffing.changed_fields(row["spec"], spec)
                converged = row["status"] == "active" and row[
                    "applied_fingerprint"
                ] == spec_fingerprint(source.tenant, platform)
                action = "unchanged" if converged else "update"
            changes = (
                []
                if action == "unchanged"
                else [c for s in self._steps(platform) for c in s.plan(ctx)]
            )
            plans.append(TenantPlan(source.tenant.id, source.file, action, fields, changes))
        return plans

    def apply(
        self,
        sources: Sequence[TenantSource],
        platform: PlatformConfig,
        *,
        parallel: int = 4,
        reconcile: bool = False,
    ) -> list[ApplyOutcome]:
        """Converge every tenant; independent tenants run in parallel (at most `parallel`).

        A tenant already active at this spec is skipped without any remote call, unless
        `reconcile`: then every step verifies the real thing and re-applies on drift.
        """
        self.check_immutable(sources)
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            return list(pool.map(lambda s: self._apply_one(s, platform, reconcile), sources))

    def _apply_one(
        self, source: TenantSource, platform: PlatformConfig, reconcile: bool
    ) -> ApplyOutcome:
        tenant_id = source.tenant.id
        wanted = spec_fingerprint(source.tenant, platform)
        if not reconcile and self._converged(tenant_id, wanted):
            return ApplyOutcome(tenant_id, "unchanged")
        try:
            lease = self.store.acquire(tenant_id, self.holder, wait=self.lock_wait)
        except ControlPlaneError as exc:
            return ApplyOutcome(tenant_id, "failed", message=exc.message, exit_code=exc.exit_code)
        operation_id = ""
        try:
            # Another process may have finished the same work while we waited.
            if not reconcile and self._converged(tenant_id, wanted):
                return ApplyOutcome(tenant_id, "unchanged")
            operation = self.store.begin_operation(tenant_id, onboarding.KIND, wanted)
            operation_id = operation.id
            self.store.audit(
                "operation.started", tenant_id, {"operation": operation_id, "kind": onboarding.KIND}
            )
            runner = Runner(self.store, self.store, self.policy, on_event=self._event)
            with self._heartbeat(lease):
                lease = runner.run(
                    self._context(source, platform, operation_id), self._steps(platform), lease
                )
            self.store.finish_operation(operation_id, "succeeded", "", lease)
            self.store.audit("operation.succeeded", tenant_id, {"operation": operation_id})
            return ApplyOutcome(tenant_id, "applied", operation_id)
        except ControlPlaneError as exc:
            if operation_id:
                self._record_failure(operation_id, tenant_id, exc, lease)
            return ApplyOutcome(tenant_id, "failed", operation_id, exc.message, exc.exit_code)
        finally:
            self.store.release(lease)

    @contextmanager
    def _heartbeat(self, lease: Lease) -> Iterator[None]:
        """Renew the lease in the background while a long step (terraform) runs."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.store.lease_seconds / 3):
                try:
                    self.store.renew(lease)
                except ControlPlaneError:
                    return  # lost: the fencing token refuses this holder's next write

        thread = threading.Thread(target=beat, name=f"lease-{lease.tenant_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _record_failure(
        self, operation_id: str, tenant_id: str, exc: ControlPlaneError, lease: Any
    ) -> None:
        try:
            self.store.finish_operation(operation_id, "failed", exc.message, lease)
        except ControlPlaneError:
            log.warning("could not mark operation %s failed: lease lost", operation_id)
        self.store.audit(
            "operation.failed", tenant_id, {"operation": operation_id, "error": exc.message}
        )

    def _converged(self, tenant_id: str, wanted: str) -> bool:
        try:
            row = self.store.get_tenant(tenant_id)
        except NotFoundError:
            return False
        return bool(row["status"] == "active" and row["applied_fingerprint"] == wanted)

    def _event(self, event: StepEvent) -> None:
        self.on_event(event)
        if event.status == "done" and os.environ.get(FAULT_ENV) == event.step:
            os.kill(os.getpid(), signal.SIGKILL)

    def get(self, tenant_id: str) -> dict[str, Any]:
        """One recorded tenant; NotFoundError if unknown."""
        return self.store.get_tenant(tenant_id)

    def list_tenants(self) -> list[dict[str, Any]]:
        """Every recorded tenant."""
        return self.store.list_tenants()

    def describe(self, tenant_id: str, platform: PlatformConfig | None = None) -> dict[str, Any]:
        """A tenant with its hostnames, DNS status, newest operation and its steps."""
        row = self.store.get_tenant(tenant_id)
        operations = self.store.operations_of(tenant_id, limit=5)
        steps = []
        if operations:
            records = self.store.load_steps(operations[0]["id"])
            steps = [
                {
                    "name": r.name,
                    "status": r.status.value,
                    "attempts": r.attempts,
                    "skipped": r.skipped,
                    "last_error": r.last_error,
                    "finished_at": r.finished_at,
                }
                for r in sorted(records.values(), key=lambda r: r.position)
            ]
        return {
            **row,
            "hosts": self.store.hosts_of(tenant_id),
            "dns": self._dns_status(row, platform),
            "operations": operations,
            "steps": steps,
        }

    def _dns_status(self, row: dict[str, Any], platform: PlatformConfig | None) -> dict[str, Any]:
        """Custom hostnames' verification/SSL status and the records the tenant must publish.

        Asks Cloudflare when it is live (platform from the argument, else the
        platform.yaml beside the tenant's file); otherwise shows what the last `dns`
        step recorded.
        """
        recorded = self.store.last_done(row["id"], StepName("dns"))
        fallback = recorded.outputs.get("custom_hostnames", "[]") if recorded else "[]"
        result: dict[str, Any] = {"source": "recorded", "custom_hostnames": json.loads(fallback)}
        try:
            platform = platform or self._platform_of(row)
            desired = dns_resources.desired(Tenant.model_validate(row["spec"]), platform)
            result["hostname"] = desired.origin
            if platform.modes.cloudflare is DriverMode.LIVE:
                statuses = self._dns_provider(platform).status(desired)
                result.update(
                    source="cloudflare",
                    custom_hostnames=json.loads(dns_step.hostnames_json(statuses)),
                )
        except ControlPlaneError as exc:
            result["error"] = exc.message
        return result

    def verify(self, tenant_id: str, platform_file: Path | None = None) -> list[str]:
        """Run every onboarding step's `verify` for a recorded tenant; problems as `step: text`.

        The tenant is rebuilt from its recorded spec; the platform comes from
        `platform_file`, else the platform.yaml beside the tenant's file, else defaults.
        """
        row = self.store.get_tenant(tenant_id)
        platform = self._platform_of(row, platform_file)
        tenant = Tenant.model_validate(row["spec"])
        steps = self._steps(platform)
        # Steps read earlier steps' outputs (the live Secret holds the database's names).
        outputs = self._recorded_outputs(tenant_id, [step.name for step in steps])
        ctx = StepContext(tenant, platform, "", outputs, source_file=row["source_file"] or "")
        return [f"{step.name}: {problem}" for step in steps for problem in step.verify(ctx)]

    @staticmethod
    def _platform_of(row: dict[str, Any], platform_file: Path | None = None) -> PlatformConfig:
        """`platform_file`, else the platform.yaml beside the tenant's file, else defaults."""
        source = Path(row["source_file"]) if row["source_file"] else None
        found = platform_file or (loading.find_platform_file([source]) if source else None)
        return loading.load_platform(found)

    def _recorded_outputs(
        self, tenant_id: str, names: Sequence[StepName]
    ) -> dict[str, dict[str, str]]:
        """Outputs of each named step's last successful run, for steps that read them."""
        found: dict[str, dict[str, str]] = {}
        for name in names:
            done = self.store.last_done(tenant_id, name)
            if done is not None:
                found[name] = dict(done.outputs)
        return found

    @staticmethod
    def render(
        sources: Sequence[TenantSource], platform: PlatformConfig, out_dir: Path
    ) -> list[Path]:
        """Write the GitOps files: `OUT/<tenant-id>/...` per tenant and `OUT/_platform/`.

        Byte-stable: a file is rewritten only when its bytes change. Returns what was written.
        """
        trees = {rendering.PLATFORM_DIR: rendering.platform_files(platform)}
        for source in sources:
            trees[source.tenant.id] = rendering.tenant_files(source.tenant, platform)
        written = []
        for folder, files in trees.items():
            for relative, text in sorted(files.items()):
                path = out_dir / folder / relative
                if path.exists() and path.read_text() == text:
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                written.append(path)
        return written

    def diff(
        self, sources: Sequence[TenantSource], platform: PlatformConfig
    ) -> list[dict[str, str]]:
        """Field-level differences between desired and live Kubernetes objects, per tenant.

        Reads only, in bulk: one labelled list per kind and cluster for all tenants.
        """
        backend = self._kubernetes(platform)
        steps = kubernetes_steps.tenant_steps(backend, self._passwords(platform))
        rows: list[dict[str, str]] = []
        with backend.snapshot(kubernetes_steps.INVENTORY):
            for source in sources:
                outputs = self._recorded_outputs(source.tenant.id, [kubernetes_steps.DATABASE_STEP])
                ctx = self._context(source, platform).with_outputs(outputs)
                rows.extend(
                    {
                        "tenant": source.tenant.id,
                        "step": step.name,
                        "object": d.target,
                        "field": d.path,
                        "want": d.want,
                        "have": d.have,
                    }
                    for step in steps
                    for d in step.differences(ctx)
                )
        return rows

    def audit(self, tenant_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest audit entries first."""
        return self.store.audit_entries(tenant_id, limit)
