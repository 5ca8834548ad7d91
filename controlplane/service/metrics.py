"""Prometheus metrics of one API process, on its own registry.

Counts that live in the state store (tenants by tier and status, operations by kind and
status) are read at scrape time by a collector, in two GROUP BY queries, so every
replica reports the same numbers and nothing drifts. Resolver counters and the latency
histogram are this replica's own. Label sets are bounded: tiers, statuses, kinds and
resolver outcomes are fixed vocabularies, never tenant ids or hosts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from controlplane.errors import ControlPlaneError
from controlplane.service.resolving import OUTCOMES, Decision
from controlplane.service.sessions import Session
from controlplane.state import lookups

__all__ = ["CONTENT_TYPE", "Metrics"]

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The resolver answers from memory: buckets from 10 µs to 50 ms.
_RESOLVE_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2)


def _gauge(name: str, text: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, labels=labels)


class _StateCollector(Collector):
    """Tenants, operations, step failures and request budgets as recorded, read at scrape."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def collect(self) -> Iterator[GaugeMetricFamily]:
        engine = self.session.store.engine
        families = {
            "tenants": _gauge(
                "tenantctl_tenants", "Recorded tenants by tier and status.", ["tier", "status"]
            ),
            "operations": _gauge(
                "tenantctl_operations",
                "Recorded operations by kind and status.",
                ["kind", "status"],
            ),
            "failures": _gauge(
                "tenantctl_step_failures",
                "Failed step records by operation kind and step.",
                ["kind", "step"],
            ),
            "budgets": _gauge(
                "tenantctl_request_budget_tokens",
                "Tokens left in a shared request budget at its last use (it refills with time).",
                ["budget"],
            ),
        }
        try:
            for (tier, status), n in sorted(lookups.count_tenants(engine).items()):
                families["tenants"].add_metric([tier, status], n)
            for (kind, status), n in sorted(lookups.count_operations(engine).items()):
                families["operations"].add_metric([kind, status], n)
            for (kind, step), n in sorted(lookups.count_step_failures(engine).items()):
                families["failures"].add_metric([kind, step], n)
            for budget, tokens in sorted(lookups.budget_tokens(engine).items()):
                families["budgets"].add_metric([budget], tokens)
        except ControlPlaneError as exc:  # a scrape during an outage reports no state rows
            log.warning("metrics: %s", exc.message)
        yield from families.values()


class Metrics:
    """The registry of one process and the metrics the API updates as it serves."""

    def __init__(self, session: Session) -> None:
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
        for outcome in OUTCOMES:  # every series exists from the start, at 0
            self.resolver_requests.labels(outcome=outcome)
        self.registry.register(_StateCollector(session))

    def observe_decision(self, decision: Decision, seconds: float) -> None:
        """Count one resolver decision and its latency."""
        self.resolver_requests.labels(outcome=decision.outcome).inc()
        self.resolver_latency.observe(seconds)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
