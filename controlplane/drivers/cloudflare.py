"""Cloudflare driver: a tenant's proxied CNAME and its Cloudflare for SaaS custom hostnames.

Why it looks like this:

* **Ownership lives on the record.** Every record this control plane writes carries the
  comment `managed-by=tenantctl owner=<dns_owner_id> tenant=<id>` (plus tags where the
  zone's plan allows them). Only records carrying our marker for this tenant are updated
  or deleted; an identical record without any comment is adopted; anything else at the
  tenant's name is a collision reported before any write, so nothing changes.
* **Observe first, then write.** `apply` reads every name and hostname, decides, refuses
  on any collision, and only then writes. A write whose reply was lost (timeout, dropped
  connection, 5xx after commit) is sent again; Cloudflare then answers 81057 "already
  exists" (records) or 409/1406 "duplicate" (custom hostnames), and the driver re-reads
  and adopts, so retries never create duplicates and never fail the step.
* **Who retries.** The driver sends a request again itself after a 429 (nothing
  changed) or a 408, 5xx or connection error (a write may have landed: see above), up to
  `max_retries` (4) more times, sleeping the reply's Retry-After (up to 60 s) or else a
  jittered backoff from 0.5 s doubling to 8 s. The sleep is injectable, so tests never
  wait. The SDK's own retries are off: it sleeps where tests cannot reach, and it also
  retries every 409, which for a custom hostname just means our earlier attempt landed.
  What the driver gives up on (or a longer Retry-After) becomes a retryable
  `CloudflareError(retry_after=...)` for the engine, which re-runs the (idempotent) step;
  a 429 or a lost reply no longer costs one of the step's attempts.
* **One request budget.** Every HTTP request, retries and pages included, first takes a
  token from the shared `RequestBudget` (a Postgres token bucket in production), and a
  429 drains it for everyone, so hundreds of tenants queue instead of getting the token
  blocked. A driver retry after Retry-After finds the drained bucket refilled by then.
* The API token comes from `CLOUDFLARE_API_TOKEN` and is never logged or put in messages.

Render mode (GitOps) is `drivers.dns_files.RenderedDns`, kept apart so that only live
DNS loads the SDK (about 0.2 s of every command's start).
"""

from __future__ import annotations

import functools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import cloudflare
import httpx

from controlplane.errors import CloudflareError, ConflictError, NotFoundError
from controlplane.models.dns import (
    CustomHostnameStatus,
    DnsChange,
    DnsRecord,
    DnsReport,
    PublishRecord,
    TenantDns,
    parse_ownership,
)

__all__ = [
    "TOKEN_ENV",
    "CloudflareDns",
    "NoBudget",
    "RequestBudget",
    "publish_records",
]

log = logging.getLogger(__name__)

TOKEN_ENV = "CLOUDFLARE_API_TOKEN"  # noqa: S105 - the variable's name, not a secret
_ALREADY_EXISTS = 81057
_SAME_HOST = (81053, 81054)
_ZONE_PAGE = 5000  # records per page when listing the whole zone
_HOSTNAME_PAGE = 50  # the custom-hostname maximum
_LONGEST_WAIT = 60.0  # a longer Retry-After goes to the engine instead of blocking here
_FIRST_BACKOFF = 0.5  # seconds before the first retry when the reply names no Retry-After
_MAX_BACKOFF = 8.0
_RETRY_HEADER = "x-stainless-retry-count"  # the SDK's retry numbering, kept for our retries

_T = TypeVar("_T")


class RequestBudget(Protocol):
    """A rate limit shared by every caller of one API token (all tenants, all workers)."""

    def acquire(self) -> None:
        """Block until one more request may be sent."""
        ...

    def penalise(self, seconds: float) -> None:
        """The API answered 429: nobody sends anything for `seconds`."""
        ...


class NoBudget:
    """No shared limit (single-process tools and tests)."""

    def acquire(self) -> None:
        """Never waits."""

    def penalise(self, seconds: float) -> None:
        """Ignored: the SDK's own Retry-After handling still applies."""
        del seconds


@dataclass(frozen=True)
class _Seen:
    """A DNS record as read from Cloudflare."""

    id: str
    type: str
    name: str
    content: str
    proxied: bool
    ttl: int
    comment: str

    def describe(self) -> str:
        note = f", comment {self.comment!r}" if self.comment else ", no comment"
        return f"{self.type} {self.name} -> {self.content} (id {self.id}{note})"


@dataclass
class _Snapshot:
    """One bulk observation of the zone (see `CloudflareDns.snapshot`)."""

    records: dict[str, list[_Seen]]
    hostnames: dict[str, Any]
    stale: set[str] = field(default_factory=set)


def _retry_after(response: httpx.Response | None) -> float | None:
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _transient(exc: cloudflare.APIError) -> bool:
    """True when sending the request again may succeed (a write that landed is adopted)."""
    if isinstance(exc, cloudflare.APIStatusError):
        return exc.status_code in (408, 429) or exc.status_code >= 500
    return isinstance(exc, cloudflare.APIConnectionError)


def _backoff(retry: int) -> float:
    """Seconds before retry number `retry` + 1 when Cloudflare names no wait (jittered)."""
    ceiling = min(_MAX_BACKOFF, _FIRST_BACKOFF * 2.0**retry)
    return ceiling * random.uniform(0.75, 1.0)  # noqa: S311 - jitter, not cryptography


def _codes(exc: cloudflare.APIStatusError) -> list[int]:
    body = exc.body if isinstance(exc.body, dict) else {}
    return [int(e.get("code", 0)) for e in body.get("errors") or [] if isinstance(e, dict)]


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn SDK exceptions into the control plane's, keeping Cloudflare's error codes."""
    try:
        yield
    except cloudflare.RateLimitError as exc:
        wait = _retry_after(exc.response)
        msg = f"{what}: Cloudflare rate limit (HTTP 429); retry after {wait or 'a while'}s"
        raise CloudflareError(msg, retryable=True, retry_after=wait) from exc
    except cloudflare.NotFoundError as exc:
        msg = f"{what}: not found on Cloudflare {_codes(exc)}"
        raise NotFoundError(msg) from exc
    except cloudflare.ConflictError as exc:
        msg = f"{what}: Cloudflare reports a conflict {_codes(exc)}"
        raise ConflictError(msg) from exc
    except (cloudflare.AuthenticationError, cloudflare.PermissionDeniedError) as exc:
        msg = (
            f"{what}: Cloudflare refused the API token (HTTP {exc.status_code}) — check that "
            f"{TOKEN_ENV} grants Zone DNS:Edit and SSL and Certificates:Edit on the zone"
        )
        raise CloudflareError(msg) from exc
    except cloudflare.APIStatusError as exc:
        transient = exc.status_code >= 500 or exc.status_code == 408
        msg = f"{what}: Cloudflare answered HTTP {exc.status_code} {_codes(exc)}"
        raise CloudflareError(
            msg, retryable=transient, retry_after=_retry_after(exc.response)
        ) from exc
    except cloudflare.APIConnectionError as exc:
        msg = f"{what}: cannot reach Cloudflare ({type(exc).__name__})"
        raise CloudflareError(msg, retryable=True) from exc


def publish_records(item: Any, origin: str) -> tuple[PublishRecord, ...]:
    """What the tenant must publish for a custom hostname (SDK object or dict-like)."""
    host = item.hostname
    out = [PublishRecord("traffic", "CNAME", host, origin)]
    owner = getattr(item, "ownership_verification", None)
    if item.status != "active" and owner is not None and owner.name:
        out.append(PublishRecord("ownership", "TXT", owner.name, owner.value or ""))
    owner_http = getattr(item, "ownership_verification_http", None)
    if item.status != "active" and owner_http is not None and owner_http.http_url:
        out.append(
            PublishRecord("ownership (HTTP)", "HTTP", owner_http.http_url, owner_http.http_body)
        )
    ssl = item.ssl
    if ssl is not None and ssl.status != "active":
        for rec in ssl.validation_records or []:
            if rec.txt_name:
                out.append(PublishRecord("certificate", "TXT", rec.txt_name, rec.txt_value or ""))
            if rec.http_url:
                out.append(
                    PublishRecord("certificate (HTTP)", "HTTP", rec.http_url, rec.http_body or "")
                )
    return tuple(out)


def _hostname_status(item: Any, origin: str) -> CustomHostnameStatus:
    ssl_status = item.ssl.status if item.ssl is not None else "unknown"
    return CustomHostnameStatus(
        hostname=item.hostname,
        status=item.status or "unknown",
        ssl_status=ssl_status or "unknown",
        publish=publish_records(item, origin),
        errors=tuple(str(e) for e in item.verification_errors or []),
        id=item.id,
    )


class CloudflareDns:
    """Live DNS through the official SDK; satisfies the `dns` step's `DnsProvider`."""

    def __init__(  # noqa: PLR0913 - keyword-only knobs, all defaulted
        self,
        zone_id: str,
        *,
        budget: RequestBudget | None = None,
        base_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 4,
        timeout: float = 30.0,
        tags: bool = False,
        dcv_method: str = "txt",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        token = os.environ.get(TOKEN_ENV)
        if not token:
            msg = f"{TOKEN_ENV} is not set — export a Cloudflare API token to use live DNS"
            raise CloudflareError(msg)
        if not zone_id:
            msg = "platform.cloudflare_zone_id is empty — set it in platform.yaml for live DNS"
            raise CloudflareError(msg)
        self.zone_id = zone_id
        self.budget: RequestBudget = budget or NoBudget()
        self.tags = tags
        self.dcv_method = dcv_method
        self.max_retries = max_retries
        self.sleep = sleep
        self._local = threading.local()
        http = httpx.Client(
            transport=transport,
            timeout=timeout,
            follow_redirects=True,
            event_hooks={"request": [self._spend], "response": [self._observe]},
        )
        options: dict[str, Any] = {"base_url": base_url} if base_url else {}
        self.client = cloudflare.Cloudflare(
            api_token=token, max_retries=0, timeout=timeout, http_client=http, **options
        )

    def _spend(self, request: httpx.Request) -> None:
        self.budget.acquire()
        request.headers[_RETRY_HEADER] = str(getattr(self._local, "retry", 0))

    def _observe(self, response: httpx.Response) -> None:
        if response.status_code == 429:
            wait = _retry_after(response) or 1.0
            log.warning("Cloudflare rate limit hit; pausing all callers for %.1fs", wait)
            self.budget.penalise(wait)

    # -- sending -------------------------------------------------------------------

    def _send(self, request: Callable[[], _T]) -> _T:
        """`request()`, sent again on 429/408/5xx/connection errors; other errors propagate.

        Each try takes a budget token (the httpx hook); the last SDK error is re-raised
        unchanged for the caller's `_translated` and its own handling (81057, 1406, 404).
        """
        retry = 0
        while True:
            self._local.retry = retry
            try:
                return request()
            except cloudflare.APIError as exc:
                wait = self._pause(exc, retry)
                if wait is None:
                    raise
            finally:
                self._local.retry = 0
            log.info("Cloudflare request failed transiently; retry %d in %.2fs", retry + 1, wait)
            self.sleep(wait)
            retry += 1

    def _pause(self, exc: cloudflare.APIError, retry: int) -> float | None:
        """How long to wait before sending again, or None to give up (to the engine)."""
        if not _transient(exc) or retry >= self.max_retries:
            return None
        told = _retry_after(exc.response if isinstance(exc, cloudflare.APIStatusError) else None)
        if told is None:
            return _backoff(retry)
        return max(0.0, told) if told <= _LONGEST_WAIT else None

    def _pages(self, fetch: Callable[[int], Any], per_page: int, what: str) -> list[Any]:
        """Every item of a v4 list, stopping at a short or last page (no extra empty page)."""
        items: list[Any] = []
        page = 1
        while True:
            with _translated(what):
                batch = self._send(functools.partial(fetch, page))
            items.extend(batch.result)
            info = batch.result_info
            total = getattr(info, "total_pages", None) if info is not None else None
            if len(batch.result) < per_page or (total is not None and page >= total):
                return items
            page += 1

    # -- reads ---------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Observe in bulk: inside the block, reads come from one listing of the whole zone.

        For plan/verify/status over many tenants: a handful of paginated requests
        instead of one or two per tenant. Names written inside the block are read live
        again. The snapshot belongs to the calling thread.
        """
        records: dict[str, list[_Seen]] = {}
        for item in self._pages(
            lambda page: self.client.dns.records.list(
                zone_id=self.zone_id, page=page, per_page=_ZONE_PAGE
            ),
            _ZONE_PAGE,
            "list the DNS zone",
        ):
            seen = _seen(item)
            records.setdefault(seen.name, []).append(seen)
        hostnames = {
            h.hostname: h
            for h in self._pages(
                lambda page: self.client.custom_hostnames.list(
                    zone_id=self.zone_id, page=page, per_page=_HOSTNAME_PAGE
                ),
                _HOSTNAME_PAGE,
                "list custom hostnames",
            )
        }
        self._local.snapshot = _Snapshot(records, hostnames)
        try:
            yield
        finally:
            self._local.snapshot = None

    def _snapshot(self) -> _Snapshot | None:
        return getattr(self._local, "snapshot", None)

    def _records_named(self, name: str) -> list[_Seen]:
        """Every record at `name` (from the snapshot when one is open and still fresh)."""
        snap = self._snapshot()
        if snap is not None and name not in snap.stale:
            return list(snap.records.get(name, []))
        return [
            _seen(r)
            for r in self._pages(
                lambda page: self.client.dns.records.list(
                    zone_id=self.zone_id, name={"exact": name}, page=page, per_page=100
                ),
                100,
                f"list DNS records {name}",
            )
        ]

    def _hostname(self, hostname: str) -> Any | None:
        snap = self._snapshot()
        if snap is not None and hostname not in snap.stale:
            return snap.hostnames.get(hostname)
        with _translated(f"look up custom hostname {hostname}"):
            found = self._send(
                lambda: self.client.custom_hostnames.list(
                    zone_id=self.zone_id, hostname={"exact": hostname}
                )
            )
        return next((h for h in found.result if h.hostname == hostname), None)

    def _forget(self, name: str) -> None:
        snap = self._snapshot()
        if snap is not None:
            snap.stale.add(name)

    # -- the DnsProvider surface ---------------------------------------------------------

    def plan(self, desired: TenantDns) -> list[DnsChange]:
        """What `apply` would do (reads only); a collision shows as action `conflict`."""
        changes = [
            self._decide(desired, r, self._records_named(r.name))[0] for r in desired.records
        ]
        for host in desired.custom_hostnames:
            action = "noop" if self._hostname(host) is not None else "create"
            changes.append(DnsChange(action, f"custom-hostname/{host}"))
        return changes

    def apply(self, desired: TenantDns) -> DnsReport:
        """Create or adopt everything; ConflictError (nothing written) on a collision."""
        decisions = [self._decide(desired, r, self._records_named(r.name)) for r in desired.records]
        conflicts = [change.detail for change, _ in decisions if change.action == "conflict"]
        if conflicts:
            raise ConflictError("; ".join(conflicts))
        changes = [
            self._write(desired, r, change, seen)
            for r, (change, seen) in zip(desired.records, decisions, strict=True)
        ]
        statuses = []
        for host in desired.custom_hostnames:
            change, status = self._ensure_hostname(host, desired.origin)
            changes.append(change)
            statuses.append(status)
        return DnsReport(tuple(changes), tuple(statuses))

    def verify(self, desired: TenantDns) -> list[str]:
        """Problems with the live records (pending certificate validation is not one)."""
        problems = []
        for record in desired.records:
            change, _ = self._decide(desired, record, self._records_named(record.name))
            if change.action != "noop":
                problems.append(f"{record.name}: {change.action} needed {change.detail}".strip())
        for host in desired.custom_hostnames:
            if self._hostname(host) is None:
                problems.append(f"custom hostname {host} is missing")
        return problems

    def destroy(self, desired: TenantDns) -> list[DnsChange]:
        """Delete this tenant's records and custom hostnames; leave everyone else's alone."""
        changes = []
        for record in desired.records:
            for seen in self._records_named(record.name):
                if parse_ownership(seen.comment) != (desired.owner, desired.tenant_id):
                    log.info(
                        "leaving %s: not owned by tenant %s", seen.describe(), desired.tenant_id
                    )
                    continue
                self._delete(f"DNS record {seen.name}", self.client.dns.records.delete, seen.id)
                changes.append(DnsChange("delete", f"{seen.type}/{seen.name}"))
            self._forget(record.name)
        for host in desired.custom_hostnames:
            item = self._hostname(host)
            if item is not None:
                self._delete(
                    f"custom hostname {host}", self.client.custom_hostnames.delete, item.id
                )
                changes.append(DnsChange("delete", f"custom-hostname/{host}"))
            self._forget(host)
        return changes

    def _delete(self, what: str, delete: Callable[..., object], item_id: str) -> None:
        """DELETE; a 404 means it is gone already (maybe by our own DELETE's lost reply)."""
        with _translated(f"delete {what}"):
            try:
                self._send(functools.partial(delete, item_id, zone_id=self.zone_id))
            except cloudflare.NotFoundError:
                log.info("%s was already gone", what)

    def status(self, desired: TenantDns) -> list[CustomHostnameStatus]:
        """Verification and certificate status of each custom hostname, as Cloudflare sees it."""
        statuses = []
        for host in desired.custom_hostnames:
            item = self._hostname(host)
            statuses.append(
                _hostname_status(item, desired.origin)
                if item is not None
                else CustomHostnameStatus(host, "missing", "missing")
            )
        return statuses

    # -- decisions and writes ------------------------------------------------------------

    def _decide(
        self, desired: TenantDns, want: DnsRecord, seen: Sequence[_Seen]
    ) -> tuple[DnsChange, _Seen | None]:
        target = f"{want.type}/{want.name}"
        ours = [s for s in seen if parse_ownership(s.comment) == (desired.owner, desired.tenant_id)]
        foreign = [s for s in seen if s not in ours]
        if foreign:
            only = foreign[0]
            identical = only.type == want.type and only.content == want.content.lower()
            if len(foreign) == 1 and not ours and identical and not only.comment:
                return DnsChange("adopt", target, "identical record without owner"), only
            taken = "; ".join(s.describe() for s in foreign)
            msg = (
                f"tenant '{desired.tenant_id}': DNS name {want.name} is taken by {taken}, which "
                "tenantctl does not own for this tenant; nothing was changed. Delete that record, "
                f"or set its comment to '{desired.comment}' to let tenantctl adopt it"
            )
            return DnsChange("conflict", target, msg), None
        if not ours:
            return DnsChange("create", target, f"-> {want.content}"), None
        mine = ours[0]
        if _same(mine, want):
            return DnsChange("noop", target), mine
        return DnsChange("update", target, f"{mine.content} -> {want.content}"), mine

    def _fields(self, desired: TenantDns, want: DnsRecord) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "zone_id": self.zone_id,
            "type": want.type,
            "name": want.name,
            "content": want.content,
            "ttl": want.ttl,
            "proxied": want.proxied,
            "comment": desired.comment,
        }
        if self.tags:
            fields["tags"] = list(desired.tags)
        return fields

    def _write(
        self, desired: TenantDns, want: DnsRecord, change: DnsChange, seen: _Seen | None
    ) -> DnsChange:
        if change.action == "noop":
            return change
        fields = self._fields(desired, want)
        self._forget(want.name)
        if seen is not None:  # update or adopt: PATCH keeps what we do not manage
            with _translated(f"update DNS record {want.name}"):
                self._send(lambda: self.client.dns.records.edit(seen.id, **fields))
            return change
        if self._created(fields):
            return change
        # "Already exists": our earlier attempt landed (lost reply) or someone raced us.
        again, mine = self._decide(desired, want, self._records_named(want.name))
        if again.action == "conflict":
            raise ConflictError(again.detail)
        if again.action == "create":  # says "exists" but lists nothing: let the engine retry
            msg = f"create DNS record {want.name}: Cloudflare says it exists but lists none"
            raise CloudflareError(msg, retryable=True)
        return self._write(desired, want, again, mine) if again.action != "noop" else change

    def _created(self, fields: dict[str, Any]) -> bool:
        """POST the record; False when Cloudflare answers that it (or a same-host one) exists."""
        with _translated(f"create DNS record {fields['name']}"):
            try:
                self._send(lambda: self.client.dns.records.create(**fields))
            except cloudflare.BadRequestError as exc:
                if not set(_codes(exc)) & {_ALREADY_EXISTS, *_SAME_HOST}:
                    raise
                return False
        return True

    def _ensure_hostname(self, host: str, origin: str) -> tuple[DnsChange, CustomHostnameStatus]:
        target = f"custom-hostname/{host}"
        item = self._hostname(host)
        if item is not None:
            return DnsChange("noop", target), _hostname_status(item, origin)
        self._forget(host)
        ssl = {"method": self.dcv_method, "type": "dv"}
        create = functools.partial(
            self.client.custom_hostnames.create,
            zone_id=self.zone_id,
            hostname=host,
            ssl=ssl,  # type: ignore[arg-type]
        )
        with _translated(f"create custom hostname {host}"):
            try:
                item = self._send(create)
            except cloudflare.ConflictError:
                item = self._hostname(host)  # 1406: it exists already (our lost reply)
        if item is None:
            msg = f"custom hostname {host}: Cloudflare reported a duplicate but lists none"
            raise CloudflareError(msg, retryable=True)
        return DnsChange("create", target), _hostname_status(item, origin)


def _seen(record: Any) -> _Seen:
    return _Seen(
        id=record.id,
        type=record.type,
        name=record.name.lower(),
        content=str(record.content or "").lower(),
        proxied=bool(getattr(record, "proxied", False)),
        ttl=int(record.ttl or 1),
        comment=record.comment or "",
    )


def _same(seen: _Seen, want: DnsRecord) -> bool:
    ttl_ok = want.proxied or seen.ttl == want.ttl
    return (seen.type, seen.content, seen.proxied) == (
        want.type,
        want.content.lower(),
        want.proxied,
    ) and ttl_ok
