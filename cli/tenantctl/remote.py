"""Remote mode: `tenantctl --server URL ...` runs a command through the HTTP API (httpx).

`Remote` answers what a command asks in the shapes the service layer returns locally
(rows, a tenant's detail, an operation's `Outcome`), so each command renders one way
whichever mode ran it. A problem-details answer becomes a `RemoteError` carrying the
exit code the body names, so the exit codes are those of local mode too. Mutations
answer 202 with an operation; `follow` polls its steps and feeds them to the same
progress display a local run feeds, and ends with the same `Outcome`.

The token comes from `TENANTCTL_TOKEN`, else from the config file `tenantctl login`
writes (mode 0600): never from the command line, and it is never printed or logged.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from controlplane.service import ControlPlaneError, StepEvent, lifecycle

__all__ = ["TOKEN_ENV", "Remote", "RemoteError", "config_file", "save_token", "token_for"]

TOKEN_ENV = "TENANTCTL_TOKEN"  # noqa: S105 - the variable's name, not a token
_CONFIG_ENV = "TENANTCTL_CONFIG"
_UNAUTHORISED = 8
_POLL = 0.25  # seconds between polls of a running operation
_FINAL = frozenset({"succeeded", "failed", "interrupted", "waiting"})
# Step records' statuses as the runner's events name them.
_EVENT = {
    "done": "done",
    "failed": "failed",
    "running": "running",
    "waiting_retry": "waiting_retry",
}


class RemoteError(ControlPlaneError):
    """What the API refused, with the exit code its problem body names."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def config_file() -> Path:
    """Where `tenantctl login` keeps tokens (`TENANTCTL_CONFIG`, else the XDG config dir)."""
    if found := os.environ.get(_CONFIG_ENV):
        return Path(found)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tenantctl" / "config.json"


def _servers() -> dict[str, dict[str, str]]:
    path = config_file()
    if not path.exists():
        return {}
    try:
        loaded = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        msg = f"{path}: not a tenantctl config file ({exc}) — run `tenantctl login` again"
        raise RemoteError(msg, 2) from exc
    servers: dict[str, dict[str, str]] = loaded.get("servers", {})
    return servers


def _key(server: str) -> str:
    return server.rstrip("/")


def token_for(server: str) -> str:
    """The token for `server`: `TENANTCTL_TOKEN`, else the one `tenantctl login` saved."""
    token = os.environ.get(TOKEN_ENV) or _servers().get(_key(server), {}).get("token")
    if not token:
        msg = (
            f"no token for {_key(server)}: run `tenantctl login --server {_key(server)}` "
            f"or set {TOKEN_ENV}"
        )
        raise RemoteError(msg, _UNAUTHORISED)
    return token


def save_token(server: str, token: str) -> Path:
    """Keep `token` for `server` in the config file, readable by this user only."""
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    servers = {**_servers(), _key(server): {"token": token}}
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps({"servers": servers}, indent=2) + "\n")
    path.with_suffix(".tmp").replace(path)
    return path


def _dates(value: Any, key: str = "") -> Any:
    """ISO timestamps back into datetimes, as the service returns them locally."""
    if isinstance(value, dict):
        return {k: _dates(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates(v) for v in value]
    if isinstance(value, str) and (key == "at" or key.endswith("_at")):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


class Remote:
    """The API at `server`, called with `token`."""

    def __init__(self, server: str, token: str, *, timeout: float = 60.0) -> None:
        self.server = _key(server)
        self._client = httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def call(self, method: str, path: str, **options: Any) -> Any:
        """The JSON answer of one request; a refusal raises `RemoteError`.

        Raises:
            RemoteError: a problem answer (its exit code), or the server is unreachable (5).
        """
        try:
            response = self._client.request(method, path, **options)
        except httpx.TransportError as exc:
            msg = f"the API at {self.server} is unreachable: {exc} — check --server"
            raise RemoteError(msg, 5) from exc
        if response.is_error:
            raise _refusal(response)
        return _dates(response.json())

    def pages(self, path: str, params: Mapping[str, object], limit: int) -> list[dict[str, Any]]:
        """Up to `limit` items of a paged listing, following `next`."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        query: Mapping[str, object] | None = {**params, "limit": min(limit, 1000)}
        while url and len(items) < limit:
            page = self.call("GET", url, params=query)
            items += page["items"]
            url, query = page.get("next"), None
        return items[:limit]

    def follow(
        self, accepted: Mapping[str, str], on_event: Callable[[StepEvent], None]
    ) -> lifecycle.Outcome:
        """Poll an accepted operation until it ends, reporting each step's change."""
        tenant_id, url = accepted["tenant_id"], accepted["operation_url"]
        seen: dict[str, tuple[str, str]] = {}
        pause = threading.Event()
        while True:
            found = self.call("GET", url)
            for event in _changes(tenant_id, found["steps"], seen):
                on_event(event)
            if found["status"] in _FINAL:
                return lifecycle.Outcome(
                    tenant_id,
                    str(found["status"]),
                    str(found["id"]),
                    str(found["message"]),
                    int(found.get("exit_code") or 0),
                )
            pause.wait(_POLL)

    def summary(self, operation_id: str) -> str:
        """What a finished operation reports beside its status (a tier change: rows moved)."""
        return str(self.call("GET", f"/v1/operations/{operation_id}").get("summary") or "")

    def steps_of(self, accepted: Mapping[str, str]) -> list[str]:
        """Every step the accepted operation's flow runs, in order."""
        names: list[str] = self.call("GET", accepted["operation_url"])["step_names"]
        return names

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _changes(
    tenant_id: str, steps: list[dict[str, Any]], seen: dict[str, tuple[str, str]]
) -> Iterator[StepEvent]:
    for step in steps:
        status = "skipped" if step.get("skipped") else _EVENT.get(step["status"], step["status"])
        message = str(step.get("last_error") or "")
        if status == "skipped":
            message = "unchanged and verified"
        if seen.get(step["name"]) != (status, message):
            seen[step["name"]] = (status, message)
            yield StepEvent(tenant_id, step["name"], status, message)


def _refusal(response: httpx.Response) -> RemoteError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict) or "exit_code" not in body:
        msg = f"the API answered HTTP {response.status_code}: {response.text[:200]}"
        return RemoteError(msg, 1)
    return RemoteError(str(body.get("detail") or body.get("message")), int(body["exit_code"]))
