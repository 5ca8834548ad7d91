"""A Cloudflare API emulator (zones, DNS records, custom hostnames) for the official SDK.

It speaks real HTTP: a WSGI app that the `cloudflare` SDK reaches either through
`httpx.Client(transport=httpx.WSGITransport(app=emulator))` or over loopback with
`serve(emulator)`. Behaviour follows `../shared/contracts/README.md` (Cloudflare section):
the v4 envelope, error codes (81053/81054/81057 as HTTP 400, 1406 as 409, 81044 404,
7003/7000 400), pagination (a page past the end is `200` with `result: []`), name
normalisation, proxiable and TTL rules, PUT vs PATCH, rate-limit headers and 429s, and
injectable faults (429 with Retry-After, 5xx, slow responses, dropped connections, faults
after the write, and periodic ones such as "429 on every 3rd request, 500 on every 5th").
`tests/fakes/test_cloudflare_contract.py` validates its responses against the OpenAPI subset.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

__all__ = ["DROPPED", "Call", "CloudflareEmulator", "Fault", "serve"]

PREFIX = "/client/v4"
PROXIABLE = frozenset({"A", "AAAA", "CNAME"})
ADDRESS_TYPES = frozenset({"A", "AAAA"})
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ZONE_ID = re.compile(r"^[0-9a-f]{32}$")
_TAG = re.compile(r"^[A-Za-z0-9_-]+:.*$")
Response = tuple[int, dict[str, str], Any]
DROPPED = 0  # `Call.status` of a request whose connection was dropped without a reply


class ApiError(Exception):
    """A failure envelope to send: HTTP status plus Cloudflare error entries."""

    def __init__(self, status: int, code: int, message: str, *extra: tuple[int, str]) -> None:
        super().__init__(message)
        self.status = status
        self.errors = [{"code": code, "message": message}] + [
            {"code": c, "message": m} for c, m in extra
        ]


@dataclass
class Fault:
    """An injected failure for matching requests: every `every`-th one, `times` times.

    `every=3, times=None` fails the 3rd, 6th, 9th ... matching request for as long as the
    fault is installed. Each fault counts the requests it matches; when several are due,
    the first injected answers and the others keep their uses.

    `after_write=True` lets the request take effect and then fails the response, like a
    proxy that loses the reply: the client cannot tell whether its write happened.
    `drop=True` closes the connection without any reply (in-process the transport raises,
    over loopback the socket closes). A 429 always carries `Retry-After` (1 s unless
    `retry_after` says otherwise), as Cloudflare's do.
    """

    status: int = 500
    times: int | None = 1  # None: no limit
    method: str | None = None
    path_contains: str = ""
    retry_after: float | None = None
    delay: float = 0.0
    after_write: bool = False
    every: int = 1
    drop: bool = False
    seen: int = 0  # matching requests counted so far; start it higher to shift the schedule

    def matches(self, method: str, path: str) -> bool:
        return (self.method in (None, method)) and self.path_contains in path

    def due(self, method: str, path: str) -> bool:
        """Count a request; True when it is one this fault should fail."""
        if self.times == 0 or not self.matches(method, path):
            return False
        self.seen += 1
        return self.seen % self.every == 0

    def spend(self) -> Fault:
        """This fault answers the request: one use fewer."""
        if self.times is not None:
            self.times -= 1
        return self


@dataclass(frozen=True)
class Call:
    """One request the emulator answered (for assertions: no writes, retry counts)."""

    method: str
    path: str
    query: str
    status: int
    retry_count: int
    payload: Any = field(default=None, compare=False, repr=False)

    @property
    def is_write(self) -> bool:
        return self.method in WRITES


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hex_id() -> str:
    return uuid.uuid4().hex


@dataclass
class _Zone:
    id: str
    name: str
    plan: str = "free"
    account_id: str = field(default_factory=_hex_id)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    hostnames: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": "active",
            "paused": False,
            "type": "full",
            "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": None,
            "original_registrar": None,
            "original_dnshost": None,
            "created_on": "2024-01-01T00:00:00.000000Z",
            "modified_on": "2024-01-01T00:00:00.000000Z",
            "activated_on": "2024-01-01T00:00:00.000000Z",
            "account": {"id": self.account_id, "name": "Platform account"},
            "owner": {"id": self.account_id, "type": "organization", "name": "Platform"},
            "permissions": ["#dns_records:edit", "#ssl:edit"],
            "plan": {"id": self.plan, "name": f"{self.plan.title()} Website"},
            "meta": {"step": 2, "phishing_detected": False, "foundation_dns": False},
        }


def _idna(name: str) -> str:
    labels = []
    for label in name.split("."):
        try:
            labels.append(label.encode("idna").decode("ascii") if label else label)
        except UnicodeError as exc:
            raise ApiError(400, 9005, f"Invalid DNS record name: {name}") from exc
    return ".".join(labels)


def normalise_name(name: str, zone: str) -> str:
    """The FQDN Cloudflare stores: lowercase, Punycode, `@` and relative names expanded."""
    name = name.strip().rstrip(".").lower()
    if name in ("", "@"):
        return zone
    name = _idna(name)
    if name == zone or name.endswith("." + zone):
        return name
    return f"{name}.{zone}"


class _Limiter:
    """Sliding window per API token: 1200 requests per 300 s by default."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.seen: dict[str, deque[float]] = {}

    def take(self, token: str) -> tuple[int, float]:
        """Record a request; return (remaining, seconds until a slot frees, 0 if allowed)."""
        now = self.clock()
        seen = self.seen.setdefault(token, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) >= self.limit:
            return 0, max(1.0, seen[0] + self.window - now)
        seen.append(now)
        return self.limit - len(seen), 0.0


class CloudflareEmulator:
    """In-memory Cloudflare account: zones with DNS records and custom hostnames."""

    def __init__(
        self,
        *,
        tokens: Iterable[str] = ("test-token",),
        rate_limit: int = 1200,
        rate_window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tokens = set(tokens)
        self.zones: dict[str, _Zone] = {}
        self.faults: list[Fault] = []
        self.calls: list[Call] = []
        self.limiter = _Limiter(rate_limit, rate_window, clock)
        self._lock = threading.RLock()

    # -- test controls ---------------------------------------------------------

    def add_zone(self, name: str, *, plan: str = "free", zone_id: str | None = None) -> str:
        """Create a zone and return its id."""
        zone = _Zone(zone_id or _hex_id(), name.lower().rstrip("."), plan)
        with self._lock:
            self.zones[zone.id] = zone
        return zone.id

    def inject(self, fault: Fault) -> None:
        """Fail the next matching requests (see `Fault`)."""
        with self._lock:
            self.faults.append(fault)

    def records(self, zone_id: str) -> list[dict[str, Any]]:
        """Every DNS record of a zone (copies)."""
        with self._lock:
            return [dict(r) for r in self.zones[zone_id].records.values()]

    def hostnames(self, zone_id: str) -> list[dict[str, Any]]:
        """Every custom hostname of a zone (copies)."""
        with self._lock:
            return [dict(h) for h in self.zones[zone_id].hostnames.values()]

    def seed_record(self, zone_id: str, **fields: Any) -> dict[str, Any]:
        """Create a record directly, as someone outside the control plane would have."""
        with self._lock:
            return self._create_record(self.zones[zone_id], fields)

    def activate_hostname(self, zone_id: str, hostname: str) -> None:
        """Simulate the tenant publishing its records: hostname and certificate go active."""
        with self._lock:
            for item in self.zones[zone_id].hostnames.values():
                if item["hostname"] == hostname:
                    item["status"] = "active"
                    item["ssl"]["status"] = "active"
                    item["ssl"]["validation_records"] = []
                    item["verification_errors"] = []
                    item.pop("ownership_verification", None)
                    item.pop("ownership_verification_http", None)

    def writes(self) -> list[Call]:
        """The write requests answered so far."""
        return [c for c in self.calls if c.is_write]

    # -- WSGI ------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        method = environ["REQUEST_METHOD"].upper()
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        token = environ.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
        retry = int(environ.get("HTTP_X_STAINLESS_RETRY_COUNT") or 0)
        try:
            status, headers, payload = self.handle(method, path, query, body, token)
        except ConnectionResetError:  # Fault(drop=True): no reply at all
            with self._lock:
                self.calls.append(Call(method, path, query, DROPPED, retry))
            raise
        with self._lock:
            self.calls.append(Call(method, path, query, status, retry, payload))
        data = json.dumps(payload).encode()
        headers = {**headers, "Content-Type": "application/json", "Content-Length": str(len(data))}
        start_response(f"{status} {_REASONS.get(status, 'Status')}", list(headers.items()))
        return [data]

    def handle(self, method: str, path: str, query: str, body: bytes, token: str) -> Response:
        """Answer one request: auth, rate limit, faults, then the route."""
        if token not in self.tokens:
            err = ApiError(403, 10000, "Authentication error")
            return err.status, {}, _failure(err)
        remaining, wait = self.limiter.take(token)
        limits = {
            "X-RateLimit-Limit": str(self.limiter.limit),
            "X-RateLimit-Remaining": str(remaining),
        }
        if wait:
            retry_after = str(math.ceil(wait))
            headers = {**limits, "Retry-After": retry_after, "X-RateLimit-Reset": retry_after}
            msg = "Rate limited. Please wait and consider throttling your request speed"
            return 429, headers, _failure(ApiError(429, 10100, msg))
        fault = self._take_fault(method, path)
        if fault is not None and not fault.after_write:
            return self._fault_response(fault, limits)
        status, headers, payload = self._route(method, path, query, body)
        if fault is not None:
            return self._fault_response(fault, limits)
        return status, {**limits, **headers}, payload

    def _take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault due for this request (every fault counts it; only that one is used)."""
        with self._lock:
            due = [fault for fault in self.faults if fault.due(method, path)]
            return due[0].spend() if due else None

    @staticmethod
    def _fault_response(fault: Fault, limits: dict[str, str]) -> Response:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.drop:
            msg = "connection dropped (injected)"
            raise ConnectionResetError(msg)
        headers = dict(limits)
        if fault.status == 429:
            err = ApiError(429, 10100, "Rate limited. Please wait and consider throttling")
            wait = 1.0 if fault.retry_after is None else fault.retry_after
            headers["Retry-After"] = f"{wait:g}"
            headers["X-RateLimit-Reset"] = f"{math.ceil(wait)}"
        else:
            err = ApiError(fault.status, 10000, "Internal server error (injected)")
        return fault.status, headers, _failure(err)

    def _route(self, method: str, path: str, query: str, body: bytes) -> Response:
        if not path.startswith(PREFIX + "/"):
            return _no_route()
        parts = path[len(PREFIX) + 1 :].strip("/").split("/")
        params = parse_qsl(query, keep_blank_values=True)
        try:
            with self._lock:
                return self._dispatch(method, parts, params, body)
        except ApiError as err:
            return err.status, {}, _failure(err)

    def _dispatch(
        self, method: str, parts: list[str], params: list[tuple[str, str]], body: bytes
    ) -> Response:
        if parts == ["zones"] and method == "GET":
            return self._list_zones(params)
        if len(parts) < 3 or parts[0] != "zones":
            raise _route_error("/" + "/".join(parts))
        zone = self.zones.get(parts[1]) if _ZONE_ID.match(parts[1]) else None
        if zone is None:
            raise _route_error("/" + "/".join(parts))
        handler = _HANDLERS.get((parts[2], len(parts) == 4, method))
        if handler is None:
            raise _route_error("/" + "/".join(parts))
        item = parts[3] if len(parts) == 4 else None
        return handler(self, zone, item, params, _json_body(body, method))

    # -- zones -----------------------------------------------------------------

    def _list_zones(self, params: list[tuple[str, str]]) -> Response:
        query = dict(params)
        zones = sorted(self.zones.values(), key=lambda z: z.name)
        if "name" in query:
            zones = [z for z in zones if z.name == query["name"].lower()]
        return _page([z.as_json() for z in zones], query, default=20, low=5, high=50)

    # -- DNS records -----------------------------------------------------------

    def _list_records(
        self, zone: _Zone, _item: None, params: list[tuple[str, str]], _b: Any
    ) -> Response:
        query = dict(params)
        keep = _record_filter(params, zone.name)
        found = sorted(
            (r for r in zone.records.values() if keep(r)), key=lambda r: (r["type"], r["name"])
        )
        return _page(found, query, default=100, low=1, high=5_000_000)

    def _get_record(self, zone: _Zone, item: str, _p: Any, _b: Any) -> Response:
        return 200, {}, _success(self._record(zone, item))

    def _post_record(self, zone: _Zone, _item: None, _p: Any, body: dict[str, Any]) -> Response:
        return 200, {}, _success(self._create_record(zone, body))

    def _put_record(self, zone: _Zone, item: str, _p: Any, body: dict[str, Any]) -> Response:
        current = self._record(zone, item)
        return 200, {}, _success(self._replace_record(zone, current, body))

    def _patch_record(self, zone: _Zone, item: str, _p: Any, body: dict[str, Any]) -> Response:
        current = self._record(zone, item)
        merged = {k: current[k] for k in ("type", "name", "content", "proxied", "ttl")}
        merged.update({k: current[k] for k in ("comment", "tags", "priority") if k in current})
        merged.update(body)
        return 200, {}, _success(self._replace_record(zone, current, merged))

    def _delete_record(self, zone: _Zone, item: str, _p: Any, _b: Any) -> Response:
        self._record(zone, item)
        del zone.records[item]
        return 200, {}, _success({"id": item})

    def _record(self, zone: _Zone, item: str) -> dict[str, Any]:
        record = zone.records.get(item)
        if record is None:
            raise ApiError(404, 81044, "Record does not exist.")
        return dict(record)

    def _create_record(self, zone: _Zone, body: dict[str, Any]) -> dict[str, Any]:
        record = _validated(body, zone)
        _check_conflicts(zone, record, ignore=None)
        stamp = _now()
        record.update(id=_hex_id(), created_on=stamp, modified_on=stamp)
        zone.records[record["id"]] = record
        return dict(record)

    def _replace_record(
        self, zone: _Zone, current: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        record = _validated(body, zone)
        _check_conflicts(zone, record, ignore=current["id"])
        record.update(id=current["id"], created_on=current["created_on"], modified_on=_now())
        zone.records[record["id"]] = record
        return dict(record)

    # -- custom hostnames ------------------------------------------------------

    def _list_hostnames(
        self, zone: _Zone, _item: None, params: list[tuple[str, str]], _b: Any
    ) -> Response:
        query = dict(params)
        found = sorted(zone.hostnames.values(), key=lambda h: h["created_at"])
        for key, op in _HOSTNAME_FILTERS.items():
            if key in query:
                wanted = query[key].lower().rstrip(".")
                found = [h for h in found if _text_filter(h["hostname"], op, wanted)]
        if "id" in query:
            found = [h for h in found if h["id"] == query["id"]]
        if query.get("ssl") == "1":
            found = [h for h in found if h["ssl"]["status"] == "active"]
        return _page(found, query, default=20, low=5, high=50)

    def _get_hostname(self, zone: _Zone, item: str, _p: Any, _b: Any) -> Response:
        return 200, {}, _success(self._hostname(zone, item))

    def _post_hostname(self, zone: _Zone, _item: None, _p: Any, body: dict[str, Any]) -> Response:
        hostname = str(body.get("hostname") or "").lower().rstrip(".")
        if not hostname or "ssl" not in body:
            raise ApiError(400, 1400, "Custom hostname and ssl are required.")
        if any(h["hostname"] == hostname for h in zone.hostnames.values()):
            raise ApiError(409, 1406, "Duplicate custom hostname found.")
        item = _new_hostname(hostname, body)
        zone.hostnames[item["id"]] = item
        return 200, {}, _success(item)

    def _patch_hostname(self, zone: _Zone, item: str, _p: Any, body: dict[str, Any]) -> Response:
        current = zone.hostnames.get(item)
        if current is None:
            raise ApiError(404, 1436, "The custom hostname was not found.")
        for key in ("custom_metadata", "custom_origin_server", "custom_origin_sni"):
            if key in body:
                current[key] = body[key]
        if isinstance(body.get("ssl"), dict) and "method" in body["ssl"]:
            current["ssl"]["method"] = body["ssl"]["method"]
        return 200, {}, _success(dict(current))

    def _delete_hostname(self, zone: _Zone, item: str, _p: Any, _b: Any) -> Response:
        self._hostname(zone, item)
        del zone.hostnames[item]
        return 200, {}, {"id": item}  # the real API answers with a bare object here

    def _hostname(self, zone: _Zone, item: str) -> dict[str, Any]:
        found = zone.hostnames.get(item)
        if found is None:
            raise ApiError(404, 1436, "The custom hostname was not found.")
        return dict(found)


_HANDLERS: dict[tuple[str, bool, str], Callable[..., Response]] = {
    ("dns_records", False, "GET"): CloudflareEmulator._list_records,
    ("dns_records", False, "POST"): CloudflareEmulator._post_record,
    ("dns_records", True, "GET"): CloudflareEmulator._get_record,
    ("dns_records", True, "PUT"): CloudflareEmulator._put_record,
    ("dns_records", True, "PATCH"): CloudflareEmulator._patch_record,
    ("dns_records", True, "DELETE"): CloudflareEmulator._delete_record,
    ("custom_hostnames", False, "GET"): CloudflareEmulator._list_hostnames,
    ("custom_hostnames", False, "POST"): CloudflareEmulator._post_hostname,
    ("custom_hostnames", True, "GET"): CloudflareEmulator._get_hostname,
    ("custom_hostnames", True, "PATCH"): CloudflareEmulator._patch_hostname,
    ("custom_hostnames", True, "DELETE"): CloudflareEmulator._delete_hostname,
}

# SDK 5.9 sends `hostname.exact` (newer API); the 2024 schema documents plain `hostname`.
_HOSTNAME_FILTERS = {
    "hostname": "exact",
    "hostname.exact": "exact",
    "hostname.contain": "contains",
    "hostname.startsWith": "startswith",
}

_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


# -- envelopes -----------------------------------------------------------------


def _success(result: Any) -> dict[str, Any]:
    return {"success": True, "errors": [], "messages": [], "result": result}


def _failure(err: ApiError) -> dict[str, Any]:
    return {"success": False, "errors": err.errors, "messages": [], "result": None}


def _route_error(path: str) -> ApiError:
    return ApiError(
        400,
        7003,
        f"Could not route to {path}, perhaps your object identifier is invalid?",
        (7000, "No route for that URI"),
    )


def _no_route() -> Response:
    err = ApiError(400, 7000, "No route for that URI")
    return err.status, {}, _failure(err)


def _json_body(body: bytes, method: str) -> dict[str, Any]:
    if method not in ("POST", "PUT", "PATCH"):
        return {}
    try:
        parsed = json.loads(body or b"{}")
    except ValueError as exc:
        raise ApiError(400, 9207, "Request body is invalid.") from exc
    if not isinstance(parsed, dict):
        raise ApiError(400, 9207, "Request body is invalid.")
    return parsed


def _page(
    items: list[dict[str, Any]], query: dict[str, str], *, default: int, low: int, high: int
) -> Response:
    try:
        page = int(float(query.get("page", 1)))
        per_page = int(float(query.get("per_page", default)))
    except ValueError as exc:
        raise ApiError(400, 1001, "Invalid page or per_page value") from exc
    if page < 1 or not low <= per_page <= high:
        raise ApiError(400, 1001, f"per_page must be between {low} and {high}, page at least 1")
    start = (page - 1) * per_page
    chunk = items[start : start + per_page]
    info = {
        "page": page,
        "per_page": per_page,
        "count": len(chunk),
        "total_count": len(items),
        "total_pages": max(1, math.ceil(len(items) / per_page)),
    }
    return 200, {}, {**_success([dict(i) for i in chunk]), "result_info": info}


# -- DNS rules -------------------------------------------------------------------


def _validated(body: dict[str, Any], zone: _Zone) -> dict[str, Any]:
    """A stored record from a request body, or ApiError with Cloudflare's code."""
    rtype = str(body.get("type") or "").upper()
    if not rtype:
        raise ApiError(400, 9000, "DNS record type is invalid.")
    if not body.get("name"):
        raise ApiError(400, 9007, "DNS record name is required.")
    content = body.get("content")
    if not isinstance(content, str) or not content:
        raise ApiError(400, 9021, "Content is required.")
    name = normalise_name(str(body["name"]), zone.name)
    content = _checked_content(rtype, content, name)
    proxied = bool(body.get("proxied", False))
    if proxied and rtype not in PROXIABLE:
        raise ApiError(400, 9004, "This record type cannot be proxied.")
    record: dict[str, Any] = {
        "type": rtype,
        "name": name,
        "content": content,
        "proxiable": rtype in PROXIABLE,
        "proxied": proxied,
        "ttl": 1 if proxied else _checked_ttl(body.get("ttl", 1), zone),
        "tags": _checked_tags(body.get("tags") or []),
        "meta": {"auto_added": False, "source": "primary"},
    }
    comment = _checked_comment(body.get("comment"))
    if comment is not None:  # the schema's comment is a non-null string: omit when unset
        record["comment"] = comment
    if "priority" in body:
        record["priority"] = body["priority"]
    return record


def _checked_content(rtype: str, content: str, name: str) -> str:
    if rtype in ADDRESS_TYPES:
        version = 4 if rtype == "A" else 6
        try:
            address = ipaddress.ip_address(content)
        except ValueError as exc:
            raise ApiError(400, 9005, f"Content for {rtype} record is invalid.") from exc
        if address.version != version:
            raise ApiError(400, 9005, f"Content for {rtype} record is invalid.")
        return str(address)
    if rtype in ("CNAME", "NS", "MX"):
        target = content.strip().rstrip(".").lower()
        if rtype == "CNAME" and target == name:
            raise ApiError(400, 9039, "CNAME content cannot reference itself.")
        return target
    return content


def _checked_ttl(ttl: Any, zone: _Zone) -> int:
    low = 30 if zone.plan == "enterprise" else 60
    if not isinstance(ttl, int | float) or isinstance(ttl, bool):
        raise ApiError(400, 9021, "Invalid TTL.")
    if int(ttl) != 1 and not low <= int(ttl) <= 86400:
        msg = f"Invalid TTL. Must be between {low} and 86400 seconds, or 1 for automatic."
        raise ApiError(400, 9021, msg)
    return int(ttl)


def _checked_comment(comment: Any) -> str | None:
    if comment in (None, ""):
        return None
    if not isinstance(comment, str) or "\n" in comment or "\r" in comment:
        raise ApiError(400, 9102, "Comment must be a single-line string.")
    return comment


def _checked_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list) or not all(isinstance(t, str) and _TAG.match(t) for t in tags):
        raise ApiError(400, 9103, "Tags must be of the form name:value.")
    return sorted({t.split(":", 1)[0].lower() + ":" + t.split(":", 1)[1] for t in tags})


def _check_conflicts(zone: _Zone, record: dict[str, Any], *, ignore: str | None) -> None:
    for other in zone.records.values():
        if other["id"] == ignore or other["name"] != record["name"]:
            continue
        same = (other["type"], other["content"]) == (record["type"], record["content"])
        if same:
            raise ApiError(400, 81057, "The record already exists.")
        if record["type"] == "CNAME" and other["type"] in PROXIABLE:
            raise ApiError(400, 81053, "An A, AAAA, or CNAME record with that host already exists.")
        if record["type"] in ADDRESS_TYPES and other["type"] == "CNAME":
            raise ApiError(400, 81054, "A CNAME record with that host already exists.")


def _text_filter(value: str, op: str, wanted: str) -> bool:
    value, wanted = value.lower(), wanted.lower()
    tests = {
        "exact": value == wanted,
        "contains": wanted in value,
        "startswith": value.startswith(wanted),
        "endswith": value.endswith(wanted),
    }
    return tests.get(op, value == wanted)


def _record_filter(
    params: list[tuple[str, str]], zone_name: str
) -> Callable[[dict[str, Any]], bool]:
    """Build the `match=all|any` predicate of a DNS list query (dotted filter keys)."""
    tests: list[Callable[[dict[str, Any]], bool]] = []
    tag_tests: list[Callable[[dict[str, Any]], bool]] = []
    query = dict(params)
    for key, raw in params:
        base, _, op = key.partition(".")
        if base == "tag":
            tag_tests.append(_tag_test(op, raw))
        elif base == "name" and op in ("", "exact"):
            tests.append(_field_test("name", "exact", normalise_name(raw, zone_name)))
        elif base in ("name", "content", "comment", "type", "proxied"):
            tests.append(_field_test(base, op, raw))
    if tag_tests:
        combine = all if query.get("tag_match", "all") == "all" else any
        tests.append(lambda r: combine(t(r) for t in tag_tests))
    match = all if query.get("match", "all") == "all" else any
    return lambda r: not tests or match(t(r) for t in tests)


def _field_test(base: str, op: str, raw: str) -> Callable[[dict[str, Any]], bool]:
    if op == "present":
        return lambda r: bool(r.get(base))
    if op == "absent":
        return lambda r: not r.get(base)
    return lambda r: _text_filter(_as_text(r.get(base)), op, raw)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def _tag_test(op: str, raw: str) -> Callable[[dict[str, Any]], bool]:
    def tags(r: dict[str, Any]) -> dict[str, str]:
        return dict(t.split(":", 1) for t in r.get("tags", []))

    if op == "present":
        return lambda r: raw.lower() in tags(r)
    if op == "absent":
        return lambda r: raw.lower() not in tags(r)
    name, _, value = raw.partition(":")
    return lambda r: name.lower() in tags(r) and _text_filter(tags(r)[name.lower()], op, value)


def _new_hostname(hostname: str, body: dict[str, Any]) -> dict[str, Any]:
    ssl = body.get("ssl") or {}
    method = ssl.get("method", "http")
    token = str(uuid.uuid4())
    validation = (
        {"txt_name": f"_acme-challenge.{hostname}", "txt_value": uuid.uuid4().hex}
        if method == "txt"
        else {
            "http_url": f"http://{hostname}/.well-known/pki-validation/{uuid.uuid4().hex}.txt",
            "http_body": uuid.uuid4().hex,
        }
    )
    item: dict[str, Any] = {
        "id": _hex_id(),  # 32 hex (the schema's identifier); ssl.id is a 36-char UUID
        "hostname": hostname,
        "status": "pending",
        "created_at": _now(),
        "ssl": {
            "id": str(uuid.uuid4()),
            "type": "dv",
            "method": method,
            "status": "pending_validation",
            "bundle_method": ssl.get("bundle_method", "ubiquitous"),
            "wildcard": bool(ssl.get("wildcard", False)),
            "certificate_authority": ssl.get("certificate_authority", "google"),
            "validation_records": [validation],
            "settings": ssl.get("settings") or {},
        },
        "ownership_verification": {
            "type": "txt",
            "name": f"_cf-custom-hostname.{hostname}",
            "value": token,
        },
        "ownership_verification_http": {
            "http_url": f"http://{hostname}/.well-known/cf-custom-hostname-challenge/{token}",
            "http_body": token,
        },
        "verification_errors": ["custom hostname does not CNAME to this zone."],
    }
    for key in ("custom_metadata", "custom_origin_server", "custom_origin_sni"):
        if key in body:
            item[key] = body[key]
    return item


# -- loopback server -------------------------------------------------------------------


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@contextmanager
def serve(app: CloudflareEmulator) -> Iterator[str]:
    """Serve `app` on a loopback port in a thread; yields the SDK base URL."""
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{PREFIX}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
