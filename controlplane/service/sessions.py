"""A session: the state store, this process's lock-holder id, and the drivers it built.

Every service module takes a `Session`; the CLI opens one per command, the API and
workers one per process. Drivers are built once per platform config (connections reused
across tenants) by `wiring`, the only module that knows how to assemble them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from controlplane import flows, wiring
from controlplane.config.loading import TenantSource
from controlplane.drivers import (
    datasources,
    dns_files,
    postgres,
    postgres_data,
    postgres_dump,
    replication,
    terraform,
)
from controlplane.engine.operating import Operator
from controlplane.engine.retrying import RetryPolicy
from controlplane.engine.running import StepEvent, utc_now
from controlplane.engine.steps import Step, StepContext
from controlplane.engine.stores import TenantRegistry
from controlplane.models.platform import DriverMode, PlatformConfig
from controlplane.models.terraform import TerraformEvent
from controlplane.service import failpoints
from controlplane.state import budgets, database
from controlplane.state.reconciles import ReconcileBook
from controlplane.state.store import Store, default_actor, new_holder
from controlplane.steps import dns as dns_step
from controlplane.steps import kubernetes as kubernetes_steps

__all__ = ["Session", "open_session", "state_store_exists"]

# Terraform UI messages shown as progress: one start/still-running/done line per resource.
_TERRAFORM_PROGRESS = frozenset(
    {"apply_start", "apply_progress", "apply_complete", "apply_errored", "provision_errored"}
)


@dataclass
class Session:
    """What every service call needs: the store and the drivers for a platform."""

    store: Store
    lock_wait: float = 30.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    on_event: Callable[[StepEvent], None] = lambda _event: None
    holder: str = ""
    # Render mode writes here: OUT/<tenant-id>/..., like `tenantctl render`.
    out_dir: Path = field(default_factory=lambda: Path("out"))
    # Set by a shell's Ctrl-C: runs stop at the next step boundary and say what resumes.
    cancel: threading.Event = field(default_factory=threading.Event)
    # Dates exports, purge dates and purges (tests move it: `testing.FakeClock`).
    clock: Callable[[], datetime] = utc_now
    # Operations go to the queue for `tenantctl worker` instead of running in this process.
    queue: bool = False
    _drivers: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.holder = self.holder or new_holder(self.store.actor)

    def at(self, out_dir: Path) -> Session:
        """This session rendering into (and verifying) another folder.

        Kept per folder, so a worker running many operations reuses its drivers.
        """
        if out_dir == self.out_dir:
            return self
        there: Session = self._cached(
            f"at/{out_dir}", lambda: dataclasses.replace(self, out_dir=out_dir, _drivers={})
        )
        return there

    def reconciles(self) -> ReconcileBook:
        """Per-tenant GitOps bookkeeping: paused, pending deletion, reconcile backoff."""
        return ReconcileBook(self.store.engine, actor=self.store.actor)

    def operator(self) -> Operator:
        """The operation lifecycle for this holder (lease, heartbeat, fenced records)."""
        return Operator(
            self.store,
            self.store,
            self.holder,
            lock_wait=self.lock_wait,
            policy=self.policy,
            on_event=self._event,
            cancelled=self.cancel.is_set,
        )

    def _event(self, event: StepEvent) -> None:
        self.on_event(event)
        failpoints.after_event(event)

    def context(
        self,
        source: TenantSource,
        platform: PlatformConfig,
        outputs: Mapping[str, Mapping[str, str]] | None = None,
    ) -> StepContext:
        """The step context of a tenant file (outside any operation until one begins)."""
        return StepContext(
            source.tenant,
            platform,
            "",
            outputs or {},
            source_file=str(Path(source.file).resolve()),
        )

    def recorded_context(self, source_file: str, platform: PlatformConfig) -> dict[str, object]:
        """What an operation records so that any host can resume or verify it."""
        return {
            "platform": platform.model_dump(mode="json"),
            "out_dir": str(self.out_dir.resolve()),
            "source_file": source_file,
        }

    # -- drivers -------------------------------------------------------------------

    def steps(
        self, kind: str, platform: PlatformConfig, registry: TenantRegistry | None = None
    ) -> list[Step]:
        """The steps of flow `kind` with this platform's drivers.

        `registry` replaces the state store for steps that read tenant records (a bulk
        snapshot, for read-only comparisons).
        """
        return failpoints.arm(flows.steps_for(kind, self.dependencies(platform, registry)))

    def dependencies(
        self, platform: PlatformConfig, registry: TenantRegistry | None = None
    ) -> flows.Dependencies:
        """Build each step's driver for the platform's modes (live or render)."""
        provisioner, isolation = self.database_drivers(platform)
        moving = replication.Replication(isolation)  # a tier change's data steps
        return flows.Dependencies(
            registry=registry or self.store,
            provisioner=provisioner,
            isolation=isolation,
            # The initial import, the app role's login switch, row-visibility checks.
            tenant_data=postgres_data.TenantData(isolation),
            data_sources=self._cached("data-sources", datasources.DataSources),
            tables=moving,
            mover=moving,
            dns_provider=self.dns_provider(platform),
            kubernetes=self.kubernetes(platform),
            passwords=self.passwords(platform),
            dumps=postgres_dump.Dumps(isolation.servers),
            exports=self._cached(
                f"exports/{platform.exports.model_dump_json()}",
                lambda: wiring.export_store(platform),
            ),
            records=self.store,
            clock=self.clock,
        )

    def _cached(self, key: str, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._drivers:
                self._drivers[key] = build()
            return self._drivers[key]

    def database_drivers(
        self, platform: PlatformConfig
    ) -> tuple[terraform.Terraform, postgres.TenantDatabases]:
        """Terraform workspaces and isolation checks of the platform's tenant databases."""
        found: tuple[terraform.Terraform, postgres.TenantDatabases] = self._cached(
            f"db/{platform.model_dump_json()}",
            lambda: wiring.database_drivers(
                platform,
                lock_timeout=self.lock_wait,
                holder=self.holder,
                on_event=self._terraform_event,
            ),
        )
        return found

    def _terraform_event(self, event: TerraformEvent) -> None:
        """Terraform's per-resource progress, as progress of the tenant's database step."""
        if event.kind in _TERRAFORM_PROGRESS:
            self.on_event(StepEvent(event.tenant_id, "database", "progress", event.message))

    def dns_provider(self, platform: PlatformConfig) -> dns_step.DnsProvider:
        """Cloudflare through the shared request budget (live), or `OUT/<id>/dns.yaml`."""
        if platform.modes.cloudflare is not DriverMode.LIVE:
            return dns_files.RenderedDns(self.out_dir)
        from controlplane.drivers import cloudflare  # noqa: PLC0415 - the SDK: ~0.2 s, live only

        def build() -> cloudflare.CloudflareDns:
            budget = budgets.PostgresRequestBudget(
                self.store.engine, "cloudflare", limit=platform.cloudflare_request_budget
            )
            return cloudflare.CloudflareDns(
                platform.cloudflare_zone_id, budget=budget, tags=platform.cloudflare_record_tags
            )

        key = f"dns/{platform.cloudflare_zone_id}/{platform.cloudflare_request_budget}"
        provider: dns_step.DnsProvider = self._cached(key, build)
        return provider

    def kubernetes(self, platform: PlatformConfig) -> kubernetes_steps.KubernetesBackend:
        """One backend per cluster set, so API connections are reused across tenants."""
        settings = (platform.modes.kubernetes, platform.kubernetes.kubeconfig, self.out_dir)
        key = repr(("k8s", settings, sorted(platform.clusters.items())))
        backend: kubernetes_steps.KubernetesBackend = self._cached(
            key, lambda: wiring.kubernetes_backend(platform, self.out_dir)
        )
        return backend

    @staticmethod
    def passwords(platform: PlatformConfig) -> kubernetes_steps.PasswordSource | None:
        """Live mode writes the database Secret; render mode only references it."""
        if platform.modes.kubernetes != "live":
            return None
        return postgres.DerivedPasswords(postgres.load_master_key(database.data_dir()))

    @contextlib.contextmanager
    def observe(self, platform: PlatformConfig) -> Iterator[None]:
        """Observe in bulk: a list per Kubernetes kind, a zone listing, a query per Postgres."""
        with (
            self.kubernetes(platform).snapshot(
                kubernetes_steps.INVENTORY, kubernetes_steps.TENANT_KINDS
            ),
            self.dns_provider(platform).snapshot(),
            self.database_drivers(platform)[1].snapshot(),
        ):
            yield


def state_store_exists() -> bool:
    """Whether a state store is configured or was created (nothing is started to find out)."""
    if os.environ.get("TENANTCTL_DATABASE_URL"):
        return True
    return (database.data_dir() / "pgdata" / "PG_VERSION").exists()


def open_session(*, actor: str | None = None, **options: Any) -> Session:
    """Connect to the configured state store (embedded by default) and migrate it."""
    store = Store(database.connect(), actor=actor or default_actor())
    return Session(store, **options)
