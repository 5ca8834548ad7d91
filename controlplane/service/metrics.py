"""Prometheus metrics of one API process, on its own registry.

What lives in the state store is read at scrape time by a collector, in a few GROUP BY
queries, so every replica reports the same numbers, nothing drifts, and operations run
by the CLI or a worker count as much as the API's own: tenants by tier and status,
operations by kind and status, operation and step durations (histograms), failed steps,
drift problems reconcile passes repaired (by step, counted from their audit entries),
each tenant's drift and last converging operation, request budgets left. Resolver
counters and the latency histogram are this replica's own.

Label sets are bounded: tiers, statuses, kinds, step names and resolver outcomes are
fixed vocabularies, never hosts. Tenant ids label exactly two gauges (drift and last
reconcile): they grow with the fleet, not with traffic (10,000 tenants are 20,000
series, one query per scrape), and an alert needs the tenant's name (docs/api.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from controlplane.errors import ControlPlaneError
from controlplane.flows import onboarding
from controlplane.models.platform import PlatformConfig
from controlplane.service.operations import REPAIRED
from controlplane.service.resolving import OUTCOMES, Decision
from controlplane.service.sessions import Session
from controlplane.state import budgets, lookups
from controlplane.state.lookups import Durations

__all__ = ["CONTENT_TYPE", "Metrics"]

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The resolver answers from memory: buckets from 10 µs to 50 ms.
_RESOLVE_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2)
# Operations take seconds (render mode) to an hour (a dedicated database); steps less.
_OPERATION_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]
_STEP_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900]
# Operations that leave a tenant converged with its spec; a reconcile repairs found drift.
_CONVERGING = (onboarding.KIND, onboarding.RECONCILE)
_CLOUDFLARE = "cloudflare"


def _gauge(name: str, text: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, labels=labels)


def _histogram(
    name: str,
    text: str,
    labels: list[str],
    read: Callable[[list[float]], dict[tuple[str, ...], Durations]],
    bounds: list[float],
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, text, labels=labels)
    for key, durations in sorted(read(bounds).items()):
        buckets = [(str(float(b)), n) for b, n in zip(bounds, durations.at_most, strict=True)]
        family.add_metric(list(key), [*buckets, ("+Inf", durations.count)], durations.total_seconds)
    return family


class _StateCollector(Collector):
    """What the state store records, read at scrape."""

    def __init__(self, session: Session, platform: PlatformConfig) -> None:
        self.session = session
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        for read in (self._counts, self._repairs, self._durations, self._tenants, self._budgets):
            try:
                yield from read()
            except ControlPlaneError as exc:  # a scrape during an outage reports no state rows
                log.warning("metrics: %s", exc.message)

    def _counts(self) -> Iterator[Metric]:
        engine = self.session.store.engine
        tenants = _gauge(
            "tenantctl_tenants", "Recorded tenants by tier and status.", ["tier", "status"]
        )
        for (tier, status), n in sorted(lookups.count_tenants(engine).items()):
            tenants.add_metric([tier, status], n)
        operations = _gauge(
            "tenantctl_operations", "Recorded operations by kind and status.", ["kind", "status"]
        )
        for (kind, status), n in sorted(lookups.count_operations(engine).items()):
            operations.add_metric([kind, status], n)
        failures = _gauge(
            "tenantctl_step_failures",
            "Failed step records by operation kind and step.",
            ["kind", "step"],
        )
        for (kind, step), n in sorted(lookups.count_step_failures(engine).items()):
            failures.add_metric([kind, step], n)
        yield from (tenants, operations, failures)

    def _repairs(self) -> Iterator[Metric]:
        repairs = CounterMetricFamily(
            "tenantctl_reconcile_repairs",
            "Drift problems (a missing or changed object, record or grant) that reconcile "
            "passes repaired, by onboarding step.",
            labels=["step"],
        )
        for step, n in sorted(lookups.count_repairs(self.session.store.engine, REPAIRED).items()):
            repairs.add_metric([step], n)
        yield repairs

    def _durations(self) -> Iterator[Metric]:
        engine = self.session.store.engine
        yield _histogram(
            "tenantctl_operation_duration_seconds",
            "Finished operations by kind: creation to finish, in seconds.",
            ["kind"],
            lambda bounds: lookups.operation_durations(engine, bounds),
            _OPERATION_BUCKETS,
        )
        yield _histogram(
            "tenantctl_step_duration_seconds",
            "Finished steps by operation kind and step: first start to finish, in seconds.",
            ["kind", "step"],
            lambda bounds: lookups.step_durations(engine, bounds),
            _STEP_BUCKETS,
        )

    def _tenants(self) -> Iterator[Metric]:
        found = lookups.convergence(self.session.store.engine, _CONVERGING, onboarding.RECONCILE)
        drift = _gauge(
            "tenantctl_tenant_drift",
            "1 while drift found in a tenant is not repaired (its newest reconcile has not "
            "succeeded), else 0.",
            ["tenant"],
        )
        last = _gauge(
            "tenantctl_tenant_last_reconcile_timestamp_seconds",
            "When an onboard or reconcile of the tenant last succeeded (Unix time).",
            ["tenant"],
        )
        for row in found:
            drift.add_metric([row.tenant_id], int(row.drifted))
            if row.last_converged_at is not None:
                last.add_metric([row.tenant_id], row.last_converged_at)
        yield from (drift, last)

    def _budgets(self) -> Iterator[Metric]:
        engine = self.session.store.engine
        family = _gauge(
            "tenantctl_request_budget_tokens",
            "Requests a shared budget allows now (Cloudflare: refilled to this moment).",
            ["budget"],
        )
        for budget, recorded in sorted(lookups.budget_tokens(engine).items()):
            left = recorded
            if budget == _CLOUDFLARE:
                limit = self.platform.cloudflare_request_budget
                left = budgets.available_now(engine, budget, limit=limit) or recorded
            family.add_metric([budget], left)
        yield family


class Metrics:
    """The registry of one process and the metrics the API updates as it serves."""

    def __init__(self, session: Session, platform: PlatformConfig) -> None:
        self.registry = CollectorRegistry()
        self.resolver_requests = Counter(
            "tenantctl_resolver_requests",
            "Resolver decisions by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.resolver_latency = Histogram(
            "tenantctl_resolver_latency_seconds",
            "Time to decide a resolver request (index lookup), in seconds.",
            buckets=_RESOLVE_BUCKETS,
            registry=self.registry,
        )
        # Every series exists from the start, at 0, bound once (no label lookup per request).
        self._by_outcome = {o: self.resolver_requests.labels(outcome=o) for o in OUTCOMES}
        self.registry.register(_StateCollector(session, platform))

    def observe_decision(self, decision: Decision, seconds: float) -> None:
        """Count one resolver decision and its latency."""
        counter = self._by_outcome.get(decision.outcome)
        (counter or self.resolver_requests.labels(outcome=decision.outcome)).inc()
        self.resolver_latency.observe(seconds)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
