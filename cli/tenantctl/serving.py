"""`tenantctl serve` (the HTTP API on uvicorn), `tenantctl token create|list|revoke`, and
`tenantctl login` (keep a token for remote mode, `--server`).

Registered on the main app by `register`; like every command, these only parse
arguments, call `controlplane.service` (and `controlplane.api` to build the app) and
render the result.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from controlplane import service
from controlplane.service import lifecycle, tokens
from tenantctl import remote
from tenantctl.output import Format, emit

__all__ = ["register"]

Runner = Callable[[Callable[[], Any]], Any]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+)([smhd])$")
_TOKEN_COLUMNS = ["id", "name", "kind", "role", "tenant_id", "status", "expires_at", "created_by"]

out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
token_app = typer.Typer(help="Mint, list and revoke API tokens (shown once, stored hashed).")


def _duration(text: str) -> timedelta:
    found = _DURATION.match(text.strip())
    if found is None:
        msg = f"'{text}' is no duration — write e.g. 3600s, 90m, 12h or 30d"
        raise typer.BadParameter(msg)
    return timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])


def _decision_log() -> None:
    """One JSON line per resolver decision on stdout (the service writes them as JSON)."""
    logger = logging.getLogger("controlplane.service.resolving")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def register(app: typer.Typer, run: Runner, api_client: Callable[[], remote.Remote | None]) -> None:
    """Add `serve`, `token` and `login` to `app`; `run` maps service errors to exit codes,
    `api_client` is the API under `--server` (`token` then goes through /v1/tokens)."""

    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
        platform: Annotated[
            Path | None, typer.Option("--platform", help="platform.yaml for created tenants.")
        ] = None,
        out_dir: Annotated[Path, typer.Option("--out", help="Render mode output folder.")] = Path(
            "out"
        ),
        lock_timeout: Annotated[
            float, typer.Option(min=0, help="Seconds to wait for a lock.")
        ] = 10.0,
        audit_every: Annotated[
            float, typer.Option(min=0.1, help="Seconds between aggregated resolver audit entries.")
        ] = 10.0,
        queue: Annotated[
            bool,
            typer.Option(
                "--queue", help="Queue mutations for `tenantctl worker` instead of running them."
            ),
        ] = False,
    ) -> None:
        """Serve the HTTP API (OpenAPI at /docs and /openapi.json) on uvicorn.

        Example: tenantctl serve --port 8080 --platform tenant-configs/platform.yaml
        """
        import uvicorn  # noqa: PLC0415 - only this command needs the server

        from controlplane import api  # noqa: PLC0415

        config, _ = run(lambda: service.inputs.load([], platform))
        session = run(
            lambda: lifecycle.open_session(lock_wait=lock_timeout, out_dir=out_dir, queue=queue)
        )
        _decision_log()
        err.print(f"serving on http://{host}:{port} (OpenAPI: /docs)", highlight=False)
        uvicorn.run(
            api.create_app(session, config, audit_every=audit_every),
            host=host,
            port=port,
            log_level="warning",
        )

    @app.command()
    def login(
        ctx: typer.Context,
        server: Annotated[
            str | None, typer.Option("--server", help="The API's URL (or `tenantctl --server`).")
        ] = None,
    ) -> None:
        """Check a token against the API and keep it for `tenantctl --server URL ...`.

        The token is read from TENANTCTL_TOKEN or typed at a hidden prompt (never an
        argument: it would land in the shell history), checked with one request, and
        saved for that server in ~/.config/tenantctl/config.json (TENANTCTL_CONFIG),
        readable by you only (mode 0600).

        Example: tenantctl login --server https://tenantctl.internal
        """
        url = server or ctx.find_root().params.get("server")
        if not url:
            err.print("[red]error:[/red] login needs --server URL", highlight=False)
            raise typer.Exit(2)
        token = os.environ.get(remote.TOKEN_ENV) or typer.prompt("token", hide_input=True)
        api = remote.Remote(url, token.strip())
        run(lambda: api.call("GET", "/v1/tenants", params={"limit": 1}))
        path = run(lambda: remote.save_token(url, token.strip()))
        out.print(f"[green]ok[/green]: token for {api.server} saved in {path}", highlight=False)

    _register_tokens(run, api_client)
    app.add_typer(token_app, name="token")


def _register_tokens(run: Runner, api_client: Callable[[], remote.Remote | None]) -> None:
    """`token create|list|revoke`: through the service, or /v1/tokens under `--server`."""

    @token_app.command("create")
    def create(
        name: Annotated[str, typer.Argument(help="What the token is for (e.g. ci, gateway).")],
        role: Annotated[
            str | None, typer.Option(help="Platform token: admin, operator or viewer.")
        ] = None,
        tenant: Annotated[
            str | None, typer.Option(help="Tenant token: valid only on /v1/tenant/ID/.")
        ] = None,
        expires: Annotated[str, typer.Option(help="Lifetime: 3600s, 90m, 12h, 30d.")] = "30d",
        output: Annotated[Format, typer.Option("-o", "--output")] = Format.TABLE,
    ) -> None:
        """Mint a token and print it once (only its hash is stored).

        Example: tenantctl token create ci --role operator --expires 90d
        """
        ttl = _duration(expires)
        if api := api_client():
            wanted = {"name": name, "role": role, "tenant_id": tenant}
            body = run(
                lambda: api.call(
                    "POST", "/v1/tokens", json={**wanted, "expires_in": int(ttl.total_seconds())}
                )
            )
            token, row = body.pop("token"), {k: v for k, v in body.items() if k != "status"}
        else:
            session = run(service.open_session)
            token, made = run(
                lambda: tokens.create(session, name, role=role, tenant_id=tenant, ttl=ttl)
            )
            row = made.__dict__
        if output is Format.TABLE:
            out.file.write(token + "\n")
            err.print(
                f"token {row['id']} ({row['kind']}, {row['role'] or row['tenant_id']}) expires "
                f"{row['expires_at'].isoformat(timespec='seconds')}; it is shown only now",
                highlight=False,
            )
            return
        emit(out, {"token": token, **row}, output)

    @token_app.command("list")
    def list_tokens(
        output: Annotated[Format, typer.Option("-o", "--output")] = Format.TABLE,
    ) -> None:
        """List tokens (never the token itself): kind, role or tenant, status, expiry.

        Example: tenantctl token list -o json
        """
        if api := api_client():
            rows = run(lambda: api.call("GET", "/v1/tokens"))["items"]
        else:
            session = run(service.open_session)
            rows = run(lambda: tokens.list_tokens(session))
        shown = [{c: r[c] for c in [*_TOKEN_COLUMNS, "created_at", "revoked_at"]} for r in rows]
        emit(out, shown, output, columns=_TOKEN_COLUMNS, title="tokens")

    @token_app.command("revoke")
    def revoke(token_id: Annotated[str, typer.Argument(help="The token's id (tok_...).")]) -> None:
        """Revoke a token at once (every API replica refuses it from the next request).

        Example: tenantctl token revoke tok_1a2b3c4d5e6f
        """
        if api := api_client():
            row = run(lambda: api.call("DELETE", f"/v1/tokens/{token_id}"))
        else:
            session = run(service.open_session)
            row = run(lambda: tokens.revoke(session, token_id)).__dict__
        out.print(f"[green]ok[/green]: token {row['id']} ({row['name']}) revoked", highlight=False)
