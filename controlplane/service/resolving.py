"""Which tenant a request belongs to: host (or tenant id) -> routing context, from memory.

The gateway asks on every request, so the answer comes from an in-memory index, never a
query. Each replica loads the index once and keeps it current by LISTENing for the
NOTIFY that a trigger sends on every change of `tenants` or `tenant_hosts` (delivered on
commit, within milliseconds on every replica). An unknown host, or one that normalises
to more than one tenant, is not found: there is never a default tenant. A suspended or
deleted tenant is reported as such and not routed.

Every decision is one structured log line; failures also reach the audit log, summed
per interval (`FailureLog`) so a flood of unknown hosts costs one entry per interval.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import idna

from controlplane.errors import ConfigError, ControlPlaneError, SourceLocation
from controlplane.service.sessions import Session
from controlplane.state import listening, lookups
from controlplane.state.lookups import RoutingRow

__all__ = [
    "Decision",
    "FailureLog",
    "HostIndex",
    "Resolver",
    "RoutingRow",
    "normalise_host",
]

log = logging.getLogger(__name__)

ROUTED = "routed"
# Outcomes, a bounded set (they are metric labels): routed, or why not.
OUTCOMES = (ROUTED, "unknown", "ambiguous", "suspended", "deleted", "not_ready", "invalid")
_NOT_ROUTED = {"suspended": "suspended", "deleted": "deleted"}
_MAX_HOST = 253


# Labels of lowercase letters, digits and inner hyphens (none at positions 3-4, so no
# A-label): IDNA maps them to themselves, so they skip the costly `idna.encode`.
_LABEL = r"(?!..--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_HOST = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}$")


def normalise_host(raw: str) -> str:
    """`Shop.Example.COM.:443` -> `shop.example.com`; Unicode labels to their IDNA (xn--) form.

    Raises:
        ConfigError: not a hostname (empty, bad characters, too long).
    """
    host = raw.strip()
    if host.startswith("["):  # an IPv6 literal, with or without a port
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    host = host.rstrip(".").lower()
    if _PLAIN_HOST.match(host):  # what nearly every request sends: IDNA would not change it
        ascii_host = host
    else:
        try:
            ascii_host = idna.encode(host, uts46=True).decode("ascii") if host else ""
        except idna.IDNAError as exc:
            raise _invalid(raw, str(exc)) from exc
    if not ascii_host or len(ascii_host) > _MAX_HOST:
        raise _invalid(raw, "empty or longer than 253 characters")
    return ascii_host


def _invalid(raw: str, reason: str) -> ConfigError:
    shown = raw[:100]
    return ConfigError(
        [(SourceLocation("query", None, "host"), f"'{shown}' is no hostname: {reason}")]
    )


@dataclass(frozen=True)
class Decision:
    """One routing decision: the outcome, and the tenant when one was found."""

    outcome: str
    host: str
    tenant: RoutingRow | None = None
    candidates: tuple[str, ...] = ()

    @property
    def routed(self) -> bool:
        """True when the request may be routed to `tenant`."""
        return self.outcome == ROUTED


@dataclass
class HostIndex:
    """Normalised hostname -> tenant ids, and tenant id -> routing context (thread-safe)."""

    _by_host: dict[str, set[str]] = field(default_factory=dict)
    _tenants: dict[str, RoutingRow] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    loaded: bool = False

    def replace(self, rows: Iterable[RoutingRow]) -> None:
        """Swap in a complete index (after a (re)connect)."""
        by_host: dict[str, set[str]] = {}
        tenants = {}
        for row in rows:
            tenants[row.tenant_id] = row
            for host in _hosts(row):
                by_host.setdefault(host, set()).add(row.tenant_id)
        with self._lock:
            self._by_host, self._tenants, self.loaded = by_host, tenants, True

    def update(self, tenant_id: str, rows: Iterable[RoutingRow]) -> None:
        """Replace what the index holds for one tenant (no rows: the tenant is gone)."""
        found = next(iter(rows), None)
        with self._lock:
            old = self._tenants.pop(tenant_id, None)
            for host in _hosts(old) if old else ():
                owners = self._by_host.get(host, set())
                owners.discard(tenant_id)
                if not owners:
                    self._by_host.pop(host, None)
            if found is not None:
                self._tenants[tenant_id] = found
                for host in _hosts(found):
                    self._by_host.setdefault(host, set()).add(tenant_id)

    def by_host(self, host: str) -> Decision:
        """The decision for a normalised hostname."""
        with self._lock:
            owners = sorted(self._by_host.get(host, ()))
            if len(owners) > 1:
                return Decision("ambiguous", host, candidates=tuple(owners))
            row = self._tenants.get(owners[0]) if owners else None
        return _decide(host, row)

    def by_id(self, tenant_id: str) -> Decision:
        """The decision for a tenant named by id (the `X-Tenant-ID` variant)."""
        with self._lock:
            row = self._tenants.get(tenant_id)
        return _decide(tenant_id, row)

    def size(self) -> int:
        """How many tenants the index holds."""
        with self._lock:
            return len(self._tenants)


def _hosts(row: RoutingRow) -> set[str]:
    found = set()
    for host in row.hosts:
        try:
            found.add(normalise_host(host))
        except ConfigError:
            log.warning(
                "tenant %s: recorded host %r is no hostname; not routed", row.tenant_id, host
            )
    return found


def _decide(key: str, row: RoutingRow | None) -> Decision:
    if row is None:
        return Decision("unknown", key)
    if row.status in _NOT_ROUTED:
        return Decision(_NOT_ROUTED[row.status], key, row)
    if row.status != "active":
        return Decision("not_ready", key, row)
    return Decision(ROUTED, key, row)


@dataclass
class FailureLog:
    """Failed resolutions summed per interval: one audit entry per flush, not per request."""

    write: Callable[[dict[str, object]], None]
    max_hosts: int = 20
    _counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: str, host: str) -> None:
        """Count one failure (bounded memory: hosts past the first 10,000 are summed as one)."""
        with self._lock:
            key = (outcome, host) if len(self._counts) < 10_000 else (outcome, "(other)")
            self._counts[key] += 1

    def flush(self) -> None:
        """Write what was counted since the last flush as one `resolve.failed` entry."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        if not counts:
            return
        by_outcome: Counter[str] = Counter()
        for (outcome, _host), n in counts.items():
            by_outcome[outcome] += n
        top = [
            {"outcome": o, "host": h, "count": n}
            for (o, h), n in counts.most_common(self.max_hosts)
        ]
        self.write({"total": sum(counts.values()), "by_outcome": dict(by_outcome), "top": top})


@dataclass
class Resolver:
    """The index of one replica, kept current by LISTEN/NOTIFY, and its decision log.

    Its listener also hears token revocations and hands them to `forget_token` (the id;
    None after a reconnect, when revocations may have been missed: forget them all).
    """

    session: Session
    on_decision: Callable[[Decision, float], None] = lambda _d, _s: None
    forget_token: Callable[[str | None], None] = lambda _token_id: None
    flush_every: float = 10.0
    index: HostIndex = field(default_factory=HostIndex)
    failures: FailureLog = field(init=False)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.failures = FailureLog(self._audit_failures)

    def start(self) -> None:
        """Load the index, then follow changes in background threads.

        The first load happens here, so a replica that starts serving has its index; the
        listener loads it again once its LISTEN is in place (nothing falls in between).
        A store that is down now leaves the index unloaded (`/readyz` says so) until the
        listener gets through.
        """
        self._stop.clear()
        try:
            self.reload()
        except ControlPlaneError as exc:
            log.warning("resolver: index not loaded yet: %s", exc.message)
        engine = self.session.store.engine
        listener = threading.Thread(
            target=listening.listen,
            args=(engine, self._changed),
            kwargs={"on_connect": self._connected, "stop": self._stop},
            name="resolver-listen",
            daemon=True,
        )
        flusher = threading.Thread(target=self._flush_loop, name="resolver-audit", daemon=True)
        self._threads = [listener, flusher]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop following changes and write the failures counted so far."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self.failures.flush()

    def reload(self) -> None:
        """Load every tenant's routing context (one pair of queries)."""
        self.index.replace(lookups.routing_rows(self.session.store.engine))

    def _connected(self) -> None:
        self.forget_token(None)
        self.reload()

    def _changed(self, channel: str, payload: str) -> None:
        if channel == listening.TOKENS:
            self.forget_token(payload)
        elif payload == listening.EVERYTHING:
            self.reload()
        else:
            self.index.update(payload, lookups.routing_rows(self.session.store.engine, payload))

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_every):
            try:
                self.failures.flush()
            except ControlPlaneError as exc:  # the store is down: those counts are lost
                log.warning("resolver: could not audit failed resolutions: %s", exc.message)

    def _audit_failures(self, detail: dict[str, object]) -> None:
        self.session.store.audit("resolve.failed", None, {**detail, "interval_s": self.flush_every})

    def resolve(self, *, host: str | None, tenant_id: str | None, request_id: str) -> Decision:
        """Decide by host (normalised) or by tenant id; log it, count it, audit failures."""
        started = time.perf_counter()
        if not self.index.loaded:
            decision = Decision("not_ready", host or tenant_id or "")
        elif tenant_id:
            decision = self.index.by_id(tenant_id)
        else:
            decision = self.index.by_host(normalise_host(host or ""))
        elapsed = time.perf_counter() - started
        self._record(decision, elapsed, request_id)
        return decision

    def refuse(self, raw: str, request_id: str) -> None:
        """Record a request whose host was no hostname at all."""
        self._record(Decision("invalid", raw[:100]), 0.0, request_id)

    def _record(self, decision: Decision, elapsed: float, request_id: str) -> None:
        line = {
            "event": "resolve",
            "request_id": request_id,
            "host": decision.host,
            "tenant": decision.tenant.tenant_id if decision.tenant else None,
            "outcome": decision.outcome,
            "latency_ms": round(elapsed * 1000, 3),
        }
        log.info(json.dumps(line), extra=line)
        if not decision.routed:
            self.failures.add(decision.outcome, decision.host)
        self.on_decision(decision, elapsed)
