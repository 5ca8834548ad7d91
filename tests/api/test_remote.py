"""`tenantctl --server URL`: the same output and exit codes as local mode, through a real
`tenantctl serve` process."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner, Result

from controlplane import service
from tenantctl.main import app
from tests.api.conftest import mint, serve_process
from tests.conftest import EXAMPLES
from tests.lifecycle.conftest import make_tenant_folder, write_tenant
from tests.lifecycle.test_delete import audit_actions
from tests.lifecycle.test_purge import DUE
from tests.lifecycle.tiering import sums

OPERATION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}")


def _tenantctl(*args: str, token: str | None = None) -> Result:
    env = {"TENANTCTL_TOKEN": token} if token else {}
    return CliRunner().invoke(app, list(args), env=env)


def _through(url: str, default: str) -> Callable[..., Result]:
    """`tenantctl --server URL ...` with the `default` token unless `token=` names another."""

    def remote(*args: str, token: str = default) -> Result:
        return _tenantctl("--server", url, *args, token=token)

    return remote


def _same(local: Result, remote: Result) -> None:
    """Same exit code, stdout and stderr (operation ids aside)."""
    assert remote.exit_code == local.exit_code, (local.output, remote.output)
    assert remote.stdout == local.stdout
    assert OPERATION_ID.sub("ID", remote.stderr) == OPERATION_ID.sub("ID", local.stderr)


@pytest.mark.slow
def test_remote_commands_answer_like_local_ones(cli_env: dict[str, str], tmp_path: Path) -> None:
    session = service.open_session(actor="remote-test")
    operator, viewer = mint(session, "ci", role="operator"), mint(session, "gw", role="viewer")
    bluebird = str(EXAMPLES / "bluebird-books.yaml")
    with serve_process(cli_env, tmp_path, "api") as client:
        url = str(client.base_url)
        remote = _through(url, operator)
        created = remote("create", "-f", bluebird)
        assert created.exit_code == 0, created.output
        assert "tenant 'bluebird': succeeded (operation " in created.stderr
        assert "✓" in created.stderr and "activate" in created.stderr  # the step table
        for args in (
            ["get", "-o", "json"],
            ["get"],
            ["get", "bluebird", "-o", "yaml"],
            ["describe", "bluebird", "-o", "json"],
            ["describe", "bluebird", "-o", "table"],
            ["audit", "--tenant", "bluebird", "--limit", "500", "-o", "json"],
            ["verify", "bluebird"],
            ["get", "nobody"],  # 404: exit 3, the same message
            ["resume", "bluebird"],  # 409: active, exit 4
            ["describe", "nobody"],
        ):
            _same(
                _tenantctl(*args), remote(*args, token=viewer if args[0] != "resume" else operator)
            )
        suspended = remote("suspend", "bluebird", "--yes")
        assert suspended.exit_code == 0, suspended.output
        assert _tenantctl("resume", "bluebird").exit_code == 0
        _same(_tenantctl("suspend", "bluebird", "--yes"), suspended)
        refused = remote("resume", "bluebird", token=viewer)
        assert refused.exit_code == 8
        assert "needs 'operator'" in refused.stderr
        _same(_tenantctl("export", "bluebird"), remote("export", "bluebird"))
        deleted = remote("delete", "bluebird", "--yes")
        assert deleted.exit_code == 0, deleted.output
        assert "tenant 'bluebird': succeeded" in deleted.stderr
        _same(_tenantctl("delete", "bluebird", "--yes"), remote("delete", "bluebird", "--yes"))
        restored = remote("restore", "bluebird")
        assert restored.exit_code == 0, restored.output
        assert (
            _tenantctl("get", "bluebird", "-o", "json").stdout
            == remote("get", "bluebird", "-o", "json").stdout
        )


@pytest.mark.slow
def test_login_keeps_the_token_private_and_refusals_map_to_exit_codes(
    cli_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cfg" / "config.json"
    monkeypatch.setenv("TENANTCTL_CONFIG", str(config))
    monkeypatch.delenv("TENANTCTL_TOKEN", raising=False)
    viewer = mint(service.open_session(actor="remote-test"), "gw", role="viewer")
    with serve_process(cli_env, tmp_path, "api") as client:
        url = str(client.base_url)
        missing = _tenantctl("--server", url, "get")
        assert missing.exit_code == 8
        assert "tenantctl login --server" in missing.stderr
        wrong = CliRunner().invoke(app, ["login", "--server", url], input="tcp_wrong\n")
        assert wrong.exit_code == 8, wrong.output
        assert not config.exists()
        logged = CliRunner().invoke(app, ["login", "--server", url], input=viewer + "\n")
        assert logged.exit_code == 0, logged.output
        assert viewer not in logged.output
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert json.loads(config.read_text())["servers"][url.rstrip("/")]["token"] == viewer
        listed = _tenantctl("--server", url, "get", "-o", "json")
        assert (listed.exit_code, json.loads(listed.stdout)) == (0, [])
        local_only = _tenantctl("--server", url, "apply", "-f", str(EXAMPLES))
        assert local_only.exit_code == 2
        assert "no API equivalent" in local_only.stderr
    gone = _tenantctl("--server", url, "get")
    assert gone.exit_code == 5
    assert "unreachable" in gone.stderr


@pytest.mark.slow
def test_remote_tokens_are_minted_listed_and_revoked_through_the_api(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    session = service.open_session(actor="remote-test")
    admin, operator = mint(session, "root", role="admin"), mint(session, "ci", role="operator")
    with serve_process(cli_env, tmp_path, "api") as client:
        url = str(client.base_url)
        remote = _through(url, admin)
        made = remote("token", "create", "gateway", "--role", "viewer", "--expires", "2h")
        assert made.exit_code == 0, made.output
        viewer = made.stdout.strip()  # stdout holds the token alone, as locally
        assert viewer.startswith("tcp_")
        assert "(platform, viewer) expires" in made.stderr
        assert "it is shown only now" in made.stderr
        assert remote("get", "-o", "json", token=viewer).exit_code == 0  # the new token works
        minted = remote("token", "create", "t", "--role", "viewer", "-o", "json")
        as_json = json.loads(minted.stdout)
        assert as_json["role"] == "viewer"
        assert set(as_json) >= {"token", "id", "kind", "expires_at"}
        assert "status" not in as_json  # the local answer's fields, no more
        _same(_tenantctl("token", "list", "-o", "json"), remote("token", "list", "-o", "json"))
        listed = json.loads(remote("token", "list", "-o", "json").stdout)
        assert viewer not in json.dumps(listed)  # a listing never holds a token
        gateway = next(t["id"] for t in listed if t["name"] == "gateway")
        revoked = remote("token", "revoke", gateway)
        assert revoked.exit_code == 0, revoked.output
        assert f"token {gateway} (gateway) revoked" in revoked.stdout
        assert remote("get", token=viewer).exit_code == 8  # refused from the next request
        refused = remote("token", "list", token=operator)  # token management is admins' only
        assert refused.exit_code == 8
        assert "needs 'admin'" in refused.stderr
        unknown = remote("token", "revoke", "tok_000000000000")
        assert unknown.exit_code == _tenantctl("token", "revoke", "tok_000000000000").exit_code


FROZEN = re.compile(r"writes frozen [0-9.]+ s")


def _alike(text: str) -> str:
    """Output with what differs between two runs of one flow masked: ids, freeze time."""
    return FROZEN.sub("writes frozen N s", OPERATION_ID.sub("ID", text))


@pytest.mark.slow
def test_remote_tier_changes_answer_like_local_ones(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    t = make_tenant_folder(cli_env, tmp_path / "configs")
    tenant = t.tenant_id
    write_tenant(t.folder, tenant, source="./data/", lifecycle=DUE)  # retired copies due at once
    session = service.open_session(actor="remote-test")
    operator, admin = mint(session, "ci", role="operator"), mint(session, "root", role="admin")
    assert _tenantctl("create", "-f", str(t.file)).exit_code == 0
    with serve_process(cli_env, tmp_path, "api") as client:
        url = str(client.base_url)
        remote = _through(url, operator)
        for args in (
            ["upgrade", tenant, "--tier", "gold"],  # exit 2, the tier named
            ["downgrade", tenant, "--tier", "enterprise"],  # exit 2: the other direction
            ["upgrade", tenant, "--tier", "standard"],  # exit 4: on it already
            ["upgrade", "nobody", "--tier", "enterprise"],  # exit 3
        ):
            _same(_tenantctl(*args), remote(*args))
        local_only = remote("upgrade", tenant, "--tier", "enterprise", "--out", "x")
        assert local_only.exit_code == 2
        assert "--out is a local option" in local_only.stderr

        upgraded = _tenantctl("upgrade", tenant, "--tier", "enterprise")
        assert upgraded.exit_code == 0, upgraded.output
        swept = _tenantctl("purge", "--yes")  # no tenant named: the due retired copy goes
        assert swept.exit_code == 0, swept.output
        assert f"tenant '{tenant}': retired copy {t.schema} (standard" in swept.stderr
        assert sums(t.shared_url(), t.schema) == {}
        downgraded = remote("downgrade", tenant, "--tier", "standard")
        assert downgraded.exit_code == 0, downgraded.output
        assert re.search(r"': enterprise -> standard, \d+ row\(s\) moved by", downgraded.stderr)
        assert t.admin_count("customers") == 3  # back in the shared database
        upgraded_remotely = remote("upgrade", tenant, "--tier", "enterprise")

        assert upgraded_remotely.exit_code == 0, upgraded_remotely.output
        assert _alike(upgraded_remotely.stderr) == _alike(upgraded.stderr)
        assert "standard -> enterprise, 10 row(s) moved by" in upgraded_remotely.stderr
        assert "migration.resume" in upgraded_remotely.stderr  # the step table
        assert json.loads(remote("get", tenant, "-o", "json").stdout)["tier"] == "enterprise"
        assert sums(t.shared_url(), t.schema) != {}  # retired again, due at once
        assert remote("purge", "--yes", token=operator).exit_code == 8  # admins only
        swept_remotely = remote("purge", "--yes", token=admin)
        assert (swept_remotely.exit_code, swept_remotely.stderr) == (0, swept.stderr)
        assert sums(t.shared_url(), t.schema) == {}
        _same(_tenantctl("purge", "--yes"), remote("purge", "--yes", token=admin))  # nothing


def _deleted(cli_env: dict[str, str], folder: Path) -> str:
    """A tenant created and deleted locally, due for purge at once."""
    t = make_tenant_folder(cli_env, folder)
    write_tenant(t.folder, t.tenant_id, source="./data/", lifecycle=DUE)
    assert _tenantctl("create", "-f", str(t.file)).exit_code == 0
    assert _tenantctl("delete", t.tenant_id, "--yes").exit_code == 0
    return t.tenant_id


@pytest.mark.slow
def test_remote_purge_answers_like_a_local_one(cli_env: dict[str, str], tmp_path: Path) -> None:
    exported, unexported = (_deleted(cli_env, tmp_path / name) for name in ("a", "b"))
    with psycopg.connect(cli_env["TENANTCTL_DATABASE_URL"]) as conn:  # b's export is lost
        conn.execute("DELETE FROM tenant_exports WHERE tenant_id = %s", (unexported,))
    session = service.open_session(actor="remote-test")
    admin, operator = mint(session, "root", role="admin"), mint(session, "ci", role="operator")
    with serve_process(cli_env, tmp_path, "api") as client:
        url = str(client.base_url)
        remote = _through(url, admin)
        for args in (
            ["purge", "--dry-run", "-o", "json"],
            ["purge", "--dry-run"],
            ["purge", exported, "nobody", "--dry-run"],  # exit 3
            ["purge", unexported, "--yes"],  # exit 4: no verified export, audited
            ["purge", unexported, "--without-export"],  # exit 2: confirm with --yes
        ):
            _same(_tenantctl(*args), remote(*args))
        assert audit_actions(unexported).count("purge.refused") == 2
        refused = remote("purge", exported, "--yes", token=operator)
        assert refused.exit_code == 8
        assert "needs 'admin'" in refused.stderr

        purged = remote("purge", exported, "--yes")

        assert purged.exit_code == 0, purged.output
        assert f"tenant '{exported}': succeeded (operation " in purged.stderr
        assert "purge.receipt" in purged.stderr  # the step table
        assert json.loads(remote("get", exported, "-o", "json").stdout)["status"] == "purged"
        _same(_tenantctl("purge", exported, "--yes"), remote("purge", exported, "--yes"))
        without = remote("purge", unexported, "--without-export", "--yes")
        assert without.exit_code == 0, without.output
        assert "purge.without_export" in audit_actions(unexported)
        _same(_tenantctl("purge", "--yes"), remote("purge", "--yes"))  # nothing to purge
