"""The HTTP face of the fake: a ThreadingHTTPServer on loopback speaking the apiserver's REST.

It routes discovery, OpenAPI, resource collections and items (core `/api/v1/...` and
`/apis/<group>/<version>/...`, namespaced or cluster-scoped), streams watches, checks the
bearer token, and records every request so tests can assert what a client sent.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.fakes.kube_apiserver import errors, routing, storage
from tests.fakes.kube_apiserver.faults import Faults
from tests.fakes.kube_apiserver.routing import Request, Response
from tests.fakes.kube_apiserver.storage import Store

DEFAULT_TOKEN = "fake-token"  # noqa: S105 - a test credential for a loopback fake


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it (`body` parsed from JSON/YAML, or None)."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any
    status: int
    user_agent: str = ""
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def dry_run(self) -> bool:
        """True for `dryRun=All` requests (nothing was persisted)."""
        return self.query.get("dryRun") == "All"


class FakeKubeApiServer:
    """A fake kube-apiserver on `127.0.0.1:<random port>`, started in a daemon thread."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        store: Store | None = None,
        termination_delay: float | None = 0.2,
        require_token: bool = False,
    ) -> None:
        self.token = token
        self.require_token = require_token
        self.faults = Faults()
        self.store = store or Store(termination_delay=termination_delay)
        self.requests: list[RecordedRequest] = []
        self.stopping = threading.Event()
        self._httpd = _HttpServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> FakeKubeApiServer:
        """Start serving (returns self)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end open watches and cancel namespace-controller timers."""
        self.stopping.set()
        self.store.close()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeKubeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def writes(self) -> list[RecordedRequest]:
        """Recorded requests other than GET (dry-run requests included, see `.dry_run`)."""
        return [r for r in self.requests if r.method not in ("GET", "HEAD")]

    def reset_requests(self) -> None:
        """Forget the recorded requests."""
        self.requests.clear()

    def api_client(self) -> Any:
        """A `kubernetes.client.ApiClient` configured for this server and token."""
        from kubernetes import client  # noqa: PLC0415 - only tests that need it pay the import

        config = client.Configuration()
        config.host = self.url
        config.api_key = {"authorization": f"Bearer {self.token}"}
        return client.ApiClient(config)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeKubeApiServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid 40 ms stalls
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging."""

    def do_GET(self) -> None:
        """Reads, lists, watches and discovery."""
        self._handle("GET")

    def do_POST(self) -> None:
        """Creates."""
        self._handle("POST")

    def do_PUT(self) -> None:
        """Updates."""
        self._handle("PUT")

    def do_PATCH(self) -> None:
        """Patches and server-side apply."""
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        """Deletes."""
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        fake = self.server.fake
        request = self._decode(method)
        try:
            self._authenticate(fake)
            parsed = Request(
                method,
                request.path,
                request.query,
                request.content_type,
                _parse_body(request.body, request.content_type),
                request.manager,
            )
            request = parsed
            watching = method == "GET" and request.query.get("watch", "").lower() in ("true", "1")
            if watching and routing.injected(fake.store, request, fake.faults) is None:
                self._record(request, 200)
                self._watch(fake, request)
                return
            response = routing.route(fake.store, request, fake.faults)
        except errors.ApiError as exc:
            response = Response(exc.code, exc.status)
        self._record(request, response.code)
        self._send(response)

    def _decode(self, method: str) -> Request:
        """The request with its raw body (parsed later, so that a bad body is still recorded)."""
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        return Request(method, url.path, query, content_type, raw or None, self._manager(query))

    def _authenticate(self, fake: FakeKubeApiServer) -> None:
        """A wrong token is refused; no token at all is accepted unless `require_token`.

        kubectl (client-go) never sends credentials over plain HTTP (kubernetes/kubectl#744),
        so over this loopback HTTP server an anonymous request is treated like the old
        insecure port: allowed. The Python client does send the token, and it is checked.
        """
        header = self.headers.get("Authorization")
        if header is None and not fake.require_token:
            return
        if header != f"Bearer {fake.token}":
            raise errors.unauthorized()

    def _manager(self, query: dict[str, str]) -> str:
        if query.get("fieldManager"):
            return query["fieldManager"]
        agent = self.headers.get("User-Agent") or "unknown"
        return agent.split("/", 1)[0].split(" ", 1)[0]

    def _record(self, request: Request, code: int) -> None:
        self.server.fake.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=request.query,
                content_type=request.content_type,
                body=request.body,
                status=code,
                user_agent=self.headers.get("User-Agent") or "",
                headers=dict(self.headers.items()),
            )
        )

    def _send(self, response: Response) -> None:
        if isinstance(response.body, str | bytes):
            data = response.body.encode() if isinstance(response.body, str) else response.body
        else:
            data = json.dumps(response.body).encode()
        self.send_response(response.code)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        for warning in response.warnings:
            self.send_header("Warning", '299 - "' + warning.replace('"', '\\"') + '"')
        self.end_headers()
        self.wfile.write(data)

    def _watch(self, fake: FakeKubeApiServer, request: Request) -> None:
        target = routing.resolve(fake.store, request.path)
        if target is None or target.name:
            self._send(Response(404, errors.path_not_found().status))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in routing.watch_events(fake.store, target, request.query, fake.stopping):
                data = json.dumps(event).encode() + b"\n"
                self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _parse_body(raw: Any, content_type: str) -> Any:
    if not raw:
        return None
    try:
        if content_type == storage.APPLY or content_type.endswith("yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        msg = f"the body of the request could not be decoded: {exc}"
        raise errors.bad_request(msg) from exc
